#if canImport(Glibc)
import Glibc
#endif
import PGKeep

/// The one cancellation token of this process's job. The engine keeps no global state; the CLI,
/// which runs exactly one job per process, owns this one and hands it to the job.
let processCancellation = CancellationToken()

/// SIGINT/SIGTERM once a job runs: the first cancels the job (which removes what it wrote); a
/// second exits at once — the person means it, and what is on disk is still marked incomplete.
func cancelJobOnSignals() {
    for signal in [SIGINT, SIGTERM] {
        Glibc.signal(signal) { number in
            if processCancellation.cancel() { _exit(128 + number) }
        }
    }
}

/// `-P`: progress on stderr, like pg_basebackup's. On a terminal one line rewritten in place at
/// most 4 times a second; otherwise a line every 10 seconds, so logs stay readable.
final class ProgressRenderer: @unchecked Sendable {
    // @unchecked: called only from the job's own thread, one report at a time.
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private var lastPrint = -1.0
    private var printedInPlace = false

    func render(_ progress: JobProgress) {
        let interval = isTerminal ? 0.25 : 10.0
        guard progress.isFinal || lastPrint < 0 || progress.elapsedSeconds - lastPrint >= interval else { return }
        lastPrint = progress.elapsedSeconds
        let doneKB = progress.doneBytes / 1024
        let totalKB = (progress.totalBytes ?? 0) / 1024
        // The estimate can be exceeded while the cluster grows: never show more than 100%.
        let percent = totalKB > 0 ? min(100, Int(doneKB * 100 / totalKB)) : 0
        let rate = progress.elapsedSeconds > 0 ? Double(progress.doneBytes) / progress.elapsedSeconds / 1_048_576 : 0
        let width = 30, filled = width * percent / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
        let line = "[\(bar)] \(percent)% \(doneKB)/\(max(totalKB, doneKB)) kB  \(Int(rate)) MB/s"
        if isTerminal {
            writeStandardError("\r\(line)\u{1B}[K" + (progress.isFinal ? "\n" : ""))
            printedInPlace = !progress.isFinal
        } else {
            writeStandardError(line + "\n")
        }
    }
}

/// Unbuffered write to fd 2 (the C `stderr` global is not concurrency-safe to touch from Swift).
func writeStandardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in _ = write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
}
