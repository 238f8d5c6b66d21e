import ArgumentParser
import Logging
#if canImport(Glibc)
import Glibc
#endif

struct LoggingOptions: ParsableArguments {
    @Flag(name: [.customShort("v"), .long], help: "Say what is happening (twice for debug detail).")
    var verbose: Int

    func makeLogger() -> Logger {
        var logger = Logger(label: "pgkeep") { _ in TerseLogHandler() }
        logger.logLevel = verbose >= 2 ? .debug : verbose == 1 ? .info : .warning
        return logger
    }
}

/// "pgkeep: message" on stderr, "pgkeep: warning: message" for warnings and worse, like
/// PostgreSQL's own tools. No timestamps: these are a person's messages, not a log file's.
struct TerseLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let level = event.level, message = event.message
        let prefix = level >= .warning ? "pgkeep: \(level == .warning ? "warning" : "error"): " : "pgkeep: "
        var text = prefix + message.description + "\n"
        text.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
