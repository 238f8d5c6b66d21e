import Glibc
import CPGKeepShims
import Synchronization

/// A thread of its own for work that blocks (libpq, a child's pipes, accept): kept off Swift's
/// cooperative pool and off Dispatch's, started detached, named for `ps -L` and debuggers.
/// (Foundation's `Thread` did this before, and brought the whole of Foundation with it.)
public enum OSThread {
    /// Starts `body` on a new detached thread. Fails only if the system refuses a thread.
    public static func detach(name: String, _ body: @escaping @Sendable () -> Void) throws(FileSystemError) {
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
        pthread_detach(thread)
    }

    /// `body(i)` for every `i` in `0..<count`, on `workers` threads of their own that take the
    /// next index as they finish one; returns when all are done. For work that waits on the disk
    /// rather than the CPU (fsync: calls in flight together share the file system's journal
    /// commits), where Dispatch would run no more threads than there are processors.
    public static func forEach(_ count: Int, workers: Int, name: String, _ body: @escaping @Sendable (Int) -> Void) {
        guard count > 0 else { return }
        let next = Atomic<Int>(0)
        let work: @Sendable () -> Void = {
            while true {
                let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard index < count else { return }
                body(index)
            }
        }
        var threads: [pthread_t] = []
        for _ in 1..<max(1, min(workers, count)) {
            let context = Unmanaged.passRetained(Body(name: name, work)).toOpaque()
            var thread = pthread_t()
            guard pthread_create(&thread, nil, { context in
                let body = Unmanaged<Body>.fromOpaque(context!).takeRetainedValue()
                pgkeep_set_thread_name(body.name)
                body.run()
                return nil
            }, context) == 0 else {
                Unmanaged<Body>.fromOpaque(context).release()
                break // fewer threads: the work still gets done, by this one at least
            }
            threads.append(thread)
        }
        work()
        for thread in threads { pthread_join(thread, nil) }
    }

    private final class Body {
        let name: String
        let run: @Sendable () -> Void
        init(name: String, _ run: @escaping @Sendable () -> Void) { self.name = name; self.run = run }
    }
}
