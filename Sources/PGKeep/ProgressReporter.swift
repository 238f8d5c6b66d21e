#if canImport(Glibc)
import Glibc
#endif

/// `-P`: progress on stderr, like pg_basebackup's. On a terminal one line rewritten in place at
/// most 4 times a second; otherwise a line every 10 seconds, so logs stay readable.
public final class ProgressReporter {
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private var totalKB: UInt64 = 0
    private var lastPrint: Int64 = 0
    private var started: Int64 = ProgressReporter.now()
    private var printedInPlace = false

    public init() {}

    func setTotal(kilobytes: UInt64) { totalKB = kilobytes }

    func update(doneBytes: UInt64, force: Bool = false) {
        let now = Self.now()
        let interval: Int64 = isTerminal ? 250_000 : 10_000_000
        guard force || now - lastPrint >= interval else { return }
        lastPrint = now
        let doneKB = doneBytes / 1024
        // The estimate can be exceeded while the cluster grows: never show more than 100%.
        let percent = totalKB > 0 ? min(100, Int(doneKB * 100 / totalKB)) : 0
        let seconds = Double(now - started) / 1e6
        let rate = seconds > 0 ? Double(doneBytes) / seconds / 1_048_576 : 0
        let width = 30, filled = width * percent / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
        let line = "[\(bar)] \(percent)% \(doneKB)/\(max(totalKB, doneKB)) kB  \(Int(rate)) MB/s"
        if isTerminal {
            writeStandardError("\r\(line)\u{1B}[K")
            printedInPlace = true
        } else {
            writeStandardError(line + "\n")
        }
    }

    func finish(doneBytes: UInt64) {
        update(doneBytes: doneBytes, force: true)
        if printedInPlace { writeStandardError("\n") }
    }

    static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000
    }
}

/// Unbuffered write to fd 2 (the C `stderr` global is not concurrency-safe to touch from Swift).
func writeStandardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in _ = write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
}
