import Dispatch
import Logging
import PGKeep
import Sinks
import PGWire
import WAL

/// The WAL that waits on the server when a full or differential job starts — written since the
/// previous job and kept by the repository's slot — archived on a thread of its own while the
/// base backup runs. The job's WAL step after the backup then has only the backup's own WAL left.
/// (Measured on the bench cluster: a differential after 700 MB of WAL spent 3.1 of its 4.5 s
/// compressing that backlog after the backup had finished.)
///
/// It takes whole segments that exist when the job starts, and only when the archive already
/// holds WAL: a first full's WAL begins at its own backup, unknown until the server answers. A
/// receive-wal archiving into the repository owns the directory: then there is nothing to do
/// here. A failure is not the job's: the WAL step after the backup starts again where the
/// archive ends, and says what is wrong if it still is.
final class WALCatchUp: @unchecked Sendable {
    // @unchecked: `archiver` and `outcome` are touched by the catch-up thread alone until it
    // signals `finished`, and by `finish` alone after.
    private var archiver: WALArchiver?
    private var outcome: Result<WALArchiver.Summary, PGKeepError>?
    /// Stops this archiver; the job's own token stops it too (see `finish`).
    private let cancellation: CancellationToken
    private let job: CancellationToken
    private let finished = DispatchSemaphore(value: 0)

    private init(archiver: WALArchiver, cancellation: CancellationToken, job: CancellationToken) {
        self.archiver = archiver
        self.cancellation = cancellation
        self.job = job
    }

    /// Starts archiving through `end` (a segment boundary); nil when there is nothing to do or
    /// the archive is another archiver's.
    static func start(_ configuration: ReceiveWALConfiguration, through end: LSN, archiveEnd: LSN?, observer: JobObserver,
                      job: CancellationToken) -> WALCatchUp? {
        guard let archiveEnd, archiveEnd < end else { return nil }
        var configuration = configuration
        configuration.endPosition = end
        // One line per segment would break into the progress bar: a summary follows instead,
        // unless -v asked for every step.
        var quiet = observer
        if quiet.logger.logLevel >= .notice { quiet.logger.logLevel = .warning }
        let cancellation = CancellationToken()
        let catchUp: WALCatchUp
        do {
            catchUp = WALCatchUp(archiver: try WALArchiver(configuration: configuration, observer: quiet, cancellation: cancellation),
                                 cancellation: cancellation, job: job)
            try OSThread.detach(name: "pgkeep-walcatch") { [catchUp] in catchUp.run() }
        } catch {
            observer.logger.info("not archiving the waiting WAL alongside the backup: \(error)")
            return nil
        }
        observer.logger.info("archiving the WAL written since the previous job, through \(end), alongside the backup")
        return catchUp
    }

    private func run() {
        do throws(PGKeepError) { outcome = .success(try archiver!.run()) } catch { outcome = .failure(error) }
        archiver = nil  // releases the archive's lock: the job's own WAL step takes it next
        finished.signal()
    }

    /// Waits for the catch-up to end — at once, keeping what it archived, when `stop` or when
    /// the job is cancelled meanwhile.
    func finish(stop: Bool) -> Result<WALArchiver.Summary, PGKeepError> {
        if stop { cancellation.cancel() }
        while finished.wait(timeout: .now() + .milliseconds(200)) == .timedOut {
            if job.isCancelled { cancellation.cancel() }
        }
        return outcome!
    }
}
