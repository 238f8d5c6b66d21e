#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// What a job tells whoever runs it, instead of printing: log events (through the Logger's
/// handler, which the caller chooses) and progress. The engine never writes to a terminal; the
/// CLI renders these as text, a progress bar or JSON, the plugin backend as frames.
public struct JobObserver: Sendable {
    public var logger: Logger
    public var progress: @Sendable (JobProgress) -> Void

    public init(logger: Logger, progress: @escaping @Sendable (JobProgress) -> Void = { _ in }) {
        self.logger = logger
        self.progress = progress
    }
}

/// How far a long job is. Sent at most about ten times a second, and once more at the end.
public struct JobProgress: Sendable, Equatable {
    /// Bytes done (a backup: bytes the server has read, before compression).
    public var doneBytes: UInt64
    /// The estimate of the whole, when known (a backup: the server's tablespace sizes).
    public var totalBytes: UInt64?
    /// Seconds since the job started.
    public var elapsedSeconds: Double
    /// The last report of the job.
    public var isFinal: Bool

    public init(doneBytes: UInt64, totalBytes: UInt64?, elapsedSeconds: Double, isFinal: Bool = false) {
        self.doneBytes = doneBytes
        self.totalBytes = totalBytes
        self.elapsedSeconds = elapsedSeconds
        self.isFinal = isFinal
    }
}

/// Asks one job to stop. Whoever owns the job cancels it (the CLI from a signal handler — `cancel`
/// is async-signal-safe —, the plugin backend when Bacula cancels); the job's loops poll
/// `isCancelled` (at least twice a second), stop, and remove what they wrote. One token per job:
/// two jobs in one process never see each other's.
public final class CancellationToken: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    /// Returns whether it was already cancelled (a second request).
    @discardableResult
    public func cancel() -> Bool { flag.exchange(true, ordering: .relaxed) }

    public var isCancelled: Bool { flag.load(ordering: .relaxed) }
}

/// Paces progress reports and measures elapsed time for one job.
struct ProgressPacer {
    private let started = MonotonicClock.now()
    private var lastReport: Int64 = 0
    private let report: @Sendable (JobProgress) -> Void
    var totalBytes: UInt64?

    init(_ report: @escaping @Sendable (JobProgress) -> Void) { self.report = report }

    var elapsedSeconds: Double { Double(MonotonicClock.now() - started) / 1e6 }

    mutating func update(doneBytes: UInt64, final: Bool = false) {
        let now = MonotonicClock.now()
        guard final || now - lastReport >= 100_000 else { return }
        lastReport = now
        report(JobProgress(doneBytes: doneBytes, totalBytes: totalBytes, elapsedSeconds: Double(now - started) / 1e6, isFinal: final))
    }
}

enum MonotonicClock {
    /// Microseconds on the monotonic clock.
    static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000
    }
}
