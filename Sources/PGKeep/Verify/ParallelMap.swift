import Sinks
import Synchronization

/// Work spread over threads where it is independent and costs CPU: checksumming a backup's files.
enum ParallelMap {
    /// `body(i)` for every `i` in `0..<count`, on up to `workers` threads taking the next index as
    /// they finish one; the results in index order.
    static func map<T: Sendable>(count: Int, workers: Int, _ body: (Int) -> T) -> [T] {
        guard count > 0 else { return [] }
        let results = Mutex<[T?]>(Array(repeating: nil, count: count))
        withoutActuallyEscaping(body) { body in
            let unchecked = UncheckedBody(body: body)
            OSThread.forEach(count, workers: workers, name: "pgkeep-verify") { index in
                let value = unchecked.body(index)
                results.withLock { $0[index] = value }
            }
        }
        return results.withLock { $0.map { $0! } }
    }

    /// The body only reads what it captured, and every call gets its own index; `forEach`
    /// returns only when every call has.
    private struct UncheckedBody<T>: @unchecked Sendable { let body: (Int) -> T }
}
