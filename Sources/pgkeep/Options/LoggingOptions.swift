import ArgumentParser
import FoundationEssentials
import PGWire
import Logging
#if canImport(Glibc)
import Glibc
#endif

struct LoggingOptions: ParsableArguments {
    @Flag(name: [.customShort("v"), .long], help: "Say what is happening (twice for debug detail).")
    var verbose: Int

    /// `quietest`: what is shown without -v (warnings for a one-shot command, notices for a daemon).
    func makeLogger(quietest: Logger.Level = .warning, json: Bool = false) -> Logger {
        var logger = Logger(label: "pgkeep") { _ in json ? AnyLogHandler(JSONLineLogHandler()) : AnyLogHandler(TerseLogHandler()) }
        logger.logLevel = verbose >= 2 ? .debug : verbose == 1 ? min(.info, quietest) : quietest
        return logger
    }
}

/// Lets makeLogger pick a handler type at run time.
struct AnyLogHandler: LogHandler {
    private var base: any LogHandler
    init(_ base: any LogHandler) { self.base = base }
    var logLevel: Logger.Level {
        get { base.logLevel }
        set { base.logLevel = newValue }
    }
    var metadata: Logger.Metadata {
        get { base.metadata }
        set { base.metadata = newValue }
    }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { base[metadataKey: key] }
        set { base[metadataKey: key] = newValue }
    }
    func log(event: LogEvent) { base.log(event: event) }
}

/// A handler that writes one line per event to stderr; the two below differ only in the line.
protocol StandardErrorLineHandler: LogHandler {
    func line(for event: LogEvent) -> String
}

extension StandardErrorLineHandler {
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) { writeStandardError(line(for: event)) }
}

/// "pgkeep: message" on stderr, "pgkeep: warning: message" for warnings and worse, like
/// PostgreSQL's own tools. No timestamps: these are a person's messages, not a log file's.
struct TerseLogHandler: StandardErrorLineHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    func line(for event: LogEvent) -> String {
        // A server's notice is shown as PostgreSQL's tools show it ("WARNING:  …").
        if event.metadata?["server-notice"] != nil { return event.message.description + "\n" }
        let level = event.level
        let prefix = level >= .warning ? "pgkeep: \(level == .warning ? "warning" : "error"): " : "pgkeep: "
        return prefix + event.message.description + "\n"
    }
}

/// One JSON object per line on stderr, for log collectors: time (UTC, ISO 8601 with
/// milliseconds), level, message, and the event's metadata as string fields.
struct JSONLineLogHandler: StandardErrorLineHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    func line(for event: LogEvent) -> String {
        var fields: [(String, String)] = [("time", Self.timestamp()), ("level", event.level.rawValue), ("message", event.message.description)]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }).sorted(by: { $0.key < $1.key }) {
            fields.append((key, "\(value)"))
        }
        return "{" + fields.map { "\(Self.quoted($0.0)):\(Self.quoted($0.1))" }.joined(separator: ",") + "}\n"
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += "\\u" + scalar.value.hexPadded(4)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func timestamp() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var time = tm()
        var seconds = spec.tv_sec
        gmtime_r(&seconds, &time)
        return "\((time.tm_year + 1900).zeroPadded(4))-\((time.tm_mon + 1).zeroPadded(2))-\(time.tm_mday.zeroPadded(2))T"
            + "\(time.tm_hour.zeroPadded(2)):\(time.tm_min.zeroPadded(2)):\(time.tm_sec.zeroPadded(2)).\((spec.tv_nsec / 1_000_000).zeroPadded(3))Z"
    }
}

