import Glibc
import CPGKeepShims
import Synchronization

/// Threads of pgkeep's own, named for `ps -L` and debuggers: one for work that blocks (libpq, a
/// child's pipes, accept), kept off Swift's cooperative pool and off Dispatch's; and a pool for
/// a list of independent pieces of work. (Foundation's `Thread` did the first before, and
/// brought the whole of Foundation with it.)
public enum OSThread {
    /// Starts `body` on a new detached thread. Fails only if the system refuses a thread.
    public static func detach(name: String, _ body: @escaping @Sendable () -> Void) throws(FileSystemError) {
        let thread = try start(name: name, body)
        pthread_detach(thread)
    }

    /// `body(i)` for every `i` in `0..<count`, on up to `workers` threads (this one among them)
    /// that take the next index as they finish one; returns when all are done. Once a call
    /// throws, no index is started any more, and the first error is thrown when the calls in
    /// flight have returned. Unlike Dispatch, runs as many threads as asked: for work that waits
    /// on the disk (fsync: calls in flight together share the file system's journal commits).
    public static func forEach<Failure: Error>(_ count: Int, workers: Int, name: String,
                                               _ body: @escaping @Sendable (Int) throws(Failure) -> Void) throws(Failure) {
        guard count > 0 else { return }
        let next = Atomic<Int>(0)
        let failure = Mutex<Failure?>(nil)
        let work: @Sendable () -> Void = {
            while failure.withLock({ $0 == nil }) {
                let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard index < count else { return }
                do throws(Failure) { try body(index) } catch { failure.withLock { if $0 == nil { $0 = error } } }
            }
        }
        var threads: [pthread_t] = []
        for _ in 1..<max(1, min(workers, count)) {
            // Fewer threads if the system refuses one: the work still gets done, by this one at least.
            guard let thread = try? start(name: name, work) else { break }
            threads.append(thread)
        }
        work()
        for thread in threads { pthread_join(thread, nil) }
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// `fill(k)` for every `k` in `paths.indices`, on up to `workers` threads, each once the file
    /// `paths[k]` exists: one more thread creates them all first, in order, empty and private
    /// (`FileSink.createPlaceholder`), for `fill` to open with `placeholder: true`. Threads that
    /// create files in one directory at once spin on its lock, and ext4 takes its time over an
    /// inode freed moments ago while holding it; creating every file before filling any would
    /// leave the processors idle meanwhile. `stopped` is asked while a thread waits for its file:
    /// true ends the run (the caller says why). Once a call throws, nothing more is created or
    /// begun, and the first error is thrown.
    public static func fillCreated(_ paths: [String], workers: Int, name: String, stopped: @escaping @Sendable () -> Bool,
                                   _ fill: @escaping @Sendable (Int) throws -> Void) throws {
        // Files of `paths` created so far; `failed` once any call has thrown, which stops the rest.
        let created = Atomic<Int>(0), failed = -1
        // Task 0 creates every file; task k fills paths[k - 1] once it exists. Tasks are taken in
        // order, so the creator starts first and no filler waits on a task that is not running.
        try forEach(paths.count + 1, workers: workers + 1, name: name) { task in
            do {
                if task == 0 {
                    for index in paths.indices {
                        try FileSink.createPlaceholder(paths[index])
                        guard created.compareExchange(expected: index, desired: index + 1, ordering: .releasing).exchanged else { return }
                    }
                    return
                }
                while true {
                    let ready = created.load(ordering: .acquiring)
                    if ready == failed { return }
                    if ready >= task { break }
                    if stopped() { return }
                    usleep(200)
                }
                try fill(task - 1)
            } catch {
                created.store(failed, ordering: .releasing)
                throw error
            }
        }
    }

    /// A new thread running `body`, joinable until detached.
    private static func start(name: String, _ body: @escaping @Sendable () -> Void) throws(FileSystemError) -> pthread_t {
        let context = Unmanaged.passRetained(Body(name: name, body)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { context in
            let body = Unmanaged<Body>.fromOpaque(context!).takeRetainedValue()
            pgkeep_set_thread_name(body.name)
            body.run()
            return nil
        }, context)
        guard status == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw FileSystemError("start", "thread \(name)", errno: status)
        }
        return thread
    }

    private final class Body {
        let name: String
        let run: @Sendable () -> Void
        init(name: String, _ run: @escaping @Sendable () -> Void) { self.name = name; self.run = run }
    }
}
