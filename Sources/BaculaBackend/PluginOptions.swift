import PGConnection

/// The plugin string of a FileSet, as the Bacula PostgreSQL plugin spells its options:
///
///     Plugin = "pgkeep: mode=pitr service=main conninfo='host=db1 user=backup' state_dir=/var/lib/pgkeep"
///
/// Values may be bare or in single or double quotes (a backslash escapes the quote inside).
/// Flags (abort_on_error, fast_backup) take no value. An option not listed here ends the job,
/// named.
public struct PluginOptions: Equatable, Sendable {
    public enum Mode: String, Sendable { case pitr, dump }

    public var mode: Mode = .pitr
    /// A pg_service.conf entry; it also names the backup (/@PG/<service>/…).
    public var service: String = "main"
    public var serviceGiven = false
    public var conninfo: String?
    public var user: String?
    public var database: [String] = []
    public var dumpOptions: String?
    public var abortOnError = false
    public var timeoutSeconds = 300
    public var binDirectory: String?
    public var passfile: String?
    public var stateDirectory = "/var/lib/pgkeep/bacula"
    public var fastCheckpoint = false
    /// Read by the C side only (which pgkeep to run).
    public var pgkeep: String?

    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    public init() {}

    public static func parse(_ command: String) throws(Invalid) -> PluginOptions {
        var text = Substring(command)
        // "pgkeep:" — the plugin's name, then its options.
        if let colon = text.firstIndex(of: ":") { text = text[text.index(after: colon)...] }
        var options = PluginOptions()
        for (key, value) in try words(text) {
            func require() throws(Invalid) -> String {
                guard let value, !value.isEmpty else { throw Invalid(description: "plugin option \(key) needs a value (\(key)=…)") }
                return value
            }
            func flag() throws(Invalid) {
                if value != nil { throw Invalid(description: "plugin option \(key) takes no value") }
            }
            switch key {
            case "mode":
                guard let mode = Mode(rawValue: try require()) else { throw Invalid(description: "plugin option mode is pitr or dump, not \(value!)") }
                options.mode = mode
            case "service":
                let name = try require()
                guard name.allSatisfy({ $0.isLetter || $0.isNumber || "_-.".contains($0) }) else {
                    throw Invalid(description: "plugin option service '\(name)' must be letters, digits, '_', '-' or '.'")
                }
                options.service = name
                options.serviceGiven = true
            case "conninfo": options.conninfo = try require()
            case "user": options.user = try require()
            case "database": options.database.append(try require())
            case "dump_opt": options.dumpOptions = try require()
            case "abort_on_error": try flag(); options.abortOnError = true
            case "fast_backup": try flag(); options.fastCheckpoint = true
            case "timeout":
                guard let seconds = Int(try require()), seconds > 0 else { throw Invalid(description: "plugin option timeout is a number of seconds") }
                options.timeoutSeconds = seconds
            case "bin_dir": options.binDirectory = try require()
            case "pgpass": options.passfile = try require()
            case "state_dir": options.stateDirectory = try require()
            case "pgkeep": options.pgkeep = try require()
            default:
                throw Invalid(description: "unknown plugin option \(key)")
            }
        }
        return options
    }

    /// key[=value] words, values unquoted.
    static func words(_ text: Substring) throws(Invalid) -> [(String, String?)] {
        var result: [(String, String?)] = []
        var index = text.startIndex
        while index < text.endIndex {
            while index < text.endIndex, text[index] == " " || text[index] == "\t" { index = text.index(after: index) }
            guard index < text.endIndex else { break }
            let keyStart = index
            while index < text.endIndex, text[index] != "=", text[index] != " ", text[index] != "\t" { index = text.index(after: index) }
            let key = String(text[keyStart..<index])
            guard index < text.endIndex, text[index] == "=" else {
                result.append((key, nil))
                continue
            }
            index = text.index(after: index)
            var value = ""
            if index < text.endIndex, text[index] == "'" || text[index] == "\"" {
                let quote = text[index]
                index = text.index(after: index)
                var closed = false
                while index < text.endIndex {
                    let character = text[index]
                    index = text.index(after: index)
                    if character == "\\", index < text.endIndex, text[index] == quote || text[index] == "\\" {
                        value.append(text[index])
                        index = text.index(after: index)
                    } else if character == quote {
                        closed = true
                        break
                    } else {
                        value.append(character)
                    }
                }
                if !closed { throw Invalid(description: "plugin option \(key) has an unclosed \(quote)") }
            } else {
                while index < text.endIndex, text[index] != " ", text[index] != "\t" {
                    value.append(text[index])
                    index = text.index(after: index)
                }
            }
            result.append((key, value))
        }
        return result
    }

    /// How libpq reaches the server: conninfo, else the service entry, plus user and passfile.
    public var connection: ConnectionParameters {
        var parts: [String] = []
        if let conninfo { parts.append(conninfo) } else if serviceGiven { parts.append("service=" + ConnectionParameters.conninfoValue(service)) }
        if let passfile { parts.append("passfile=" + ConnectionParameters.conninfoValue(passfile)) }
        var parameters = ConnectionParameters(connectionString: parts.isEmpty ? nil : parts.joined(separator: " "))
        parameters.user = user
        return parameters
    }

    /// Where every virtual file of this backup lives: /@PG/<service>/.
    public var prefix: String { "/@PG/\(service)/" }
}
