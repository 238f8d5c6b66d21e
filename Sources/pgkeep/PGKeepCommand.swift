import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

@main
struct PGKeepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pgkeep",
        abstract: "PostgreSQL backups over the replication protocol.",
        discussion: """
            pgkeep never copies a data directory behind the server's back: it asks the server for \
            a base backup (BASE_BACKUP) and streams the WAL that makes it consistent \
            (START_REPLICATION), like pg_basebackup. Connection options work exactly as in psql: \
            -d takes a conninfo string or URI, and PGHOST, PGPORT, PGUSER, ~/.pgpass and service \
            files are honoured.
            """,
        version: "pgkeep \(BuildInfo.description)",
        subcommands: [Backup.self, ReceiveWAL.self, Verify.self, Restore.self, WALFetchCommand.self, Repo.self, List.self, Expire.self, DumpCommand.self, RestoreDump.self, Bacula.self, Check.self],
        // -h is the host, as in every PostgreSQL tool; help is --help or -?.
        helpNames: [.long, .customShort("?")]
    )

    static func main() {
        // libpq's own messages in the user's language, as PostgreSQL's tools show them (numbers
        // and the rest stay in the C locale: pgkeep's output is parsed by scripts).
        setlocale(LC_CTYPE, "")
        setlocale(LC_MESSAGES, "")
        let arguments: [String]
        do {
            arguments = try normalizedArguments(Array(CommandLine.arguments.dropFirst()))
        } catch {
            usageError("\(error)", command: nil)
        }
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            // Usage mistakes exit 2, as documented (argument-parser's own code would be 64).
            if exitCode(for: error) == .validationFailure {
                usageError(message(for: error), command: arguments.first)
            }
            exit(withError: error)
        }
    }

    /// "pgkeep: error: …" and where to read more, on stderr; exit status 2.
    static func usageError(_ message: String, command: String?) -> Never {
        var text = message.hasPrefix("Error: ") ? String(message.dropFirst("Error: ".count)) : message
        while text.last == "\n" { text.removeLast() }
        let help = command.map { "pgkeep \($0) --help" } ?? "pgkeep --help"
        writeStandardError("pgkeep: error: \(text)\nTry \"\(help)\" for more information.\n")
        Glibc.exit(2)
    }

    /// argv as getopt_long would read it, rewritten for the argument parser: the subcommand
    /// path first (`backup`, `repo init`), then its options normalised by its own option table.
    static func normalizedArguments(_ arguments: [String]) throws -> [String] {
        var command: ParsableCommand.Type = PGKeepCommand.self
        var path: [String] = [], names: [String] = []
        while let next = arguments.dropFirst(path.count).first,
              let sub = command.configuration.subcommands.first(where: { $0._commandName == next || $0.configuration.aliases.contains(next) }) {
            command = sub
            path.append(next)
            names.append(sub._commandName)
        }
        guard command != PGKeepCommand.self else { return arguments }
        var table = GetoptTable.generated(for: names.joined(separator: " ")) ?? GetoptTable(command)
        // Every PostgreSQL tool answers -V/--version; so does every pgkeep command.
        table.long["version"] = false
        table.short["V"] = .init(takesValue: false, long: "version")
        let options = try GetoptArguments.normalize(Array(arguments.dropFirst(path.count)), table: table)
        return options.contains("--version") ? ["--version"] : path + options
    }
}
