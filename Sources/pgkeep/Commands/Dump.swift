import ArgumentParser
import Dump
import FoundationEssentials
import PGWire
import Logging
import PGKeep
import Sinks

struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "A logical backup of every database, in the Bacula PostgreSQL plugin's layout.",
        discussion: """
            Writes, with PostgreSQL's own pg_dumpall and pg_dump (at least the server's major \
            version: --bin-dir, else the newest installed):

              DIR/roles.sql  DIR/tablespaces.sql  DIR/postgresql.conf  DIR/pg_hba.conf  DIR/pg_ident.conf
              DIR/<db>/createdb.sql   CREATE DATABASE with owner, encoding, locale, tablespace,
                                      connection limit, settings and grants
              DIR/<db>/schema.sql     the schema (plain SQL)
              DIR/<db>/data.sqlc      pg_dump's custom format (or data.sql with --format plain)
              DIR/databases.json      which directory holds which database

            Every database that allows connections, templates excepted, unless --database and \
            --exclude-database (psql patterns: * and ?, "quoted" keeps case) choose. A name that \
            is not safe as a directory is written with %XX escapes. Each file is streamed to \
            NAME.tmp, fsynced and renamed: a failure never leaves half a file under its name. One \
            database failing is reported and the others go on (exit 1, partial); \
            --abort-on-error stops at the first.

            Examples:
              pgkeep dump -d 'host=db1 user=postgres' --output /backups/db1-dump --jobs 2
              pgkeep dump --estimate -d 'host=db1 user=postgres' --database 'app*'
            """)

    @OptionGroup(title: "Connection") var connection: ConnectionOptions

    @Option(name: [.customShort("o"), .long], help: ArgumentHelp("The directory to write into (new, or empty).", valueName: "directory"))
    var output: String?

    @Option(name: .long, help: ArgumentHelp("Only databases matching this pattern (repeatable).", valueName: "pattern"))
    var database: [String] = []

    @Option(name: .customLong("exclude-database"), help: ArgumentHelp("Leave out databases matching this pattern (repeatable).", valueName: "pattern"))
    var excludeDatabase: [String] = []

    @Option(name: .long, help: ArgumentHelp("custom (data.sqlc, restorable table by table) or plain (data.sql).", valueName: "custom|plain"))
    var format: DumpConfiguration.Format = .custom

    @Option(name: .customLong("dump-opt"), help: ArgumentHelp("More pg_dump arguments, as one string (e.g. '--lock-wait-timeout=10s').", valueName: "args"))
    var dumpOpt: String?

    @Option(name: .customLong("bin-dir"), help: ArgumentHelp("Where pg_dump, pg_dumpall are.", valueName: "directory"))
    var binDir: String?

    @Option(name: [.customShort("j"), .long], help: ArgumentHelp("Dump this many databases at once.", valueName: "N"))
    var jobs: Int = 1

    @Flag(name: .customLong("abort-on-error"), help: "Stop at the first database that fails.")
    var abortOnError = false

    @Flag(name: .long, help: "Only print each database's size (pg_database_size) and the total.")
    var estimate = false

    @Flag(name: .long, help: "Print the result as JSON on stdout.")
    var json = false

    @Flag(name: [.customShort("P"), .long], help: "Say each database as it is dumped.")
    var progress = false

    @OptionGroup var logging: LoggingOptions

    static func split(_ text: String) throws -> [String] {
        guard let words = ShellWords.split(text) else { throw ValidationError("--dump-opt has an unclosed quote") }
        return words
    }

    func validate() throws {
        if !estimate && output == nil { throw ValidationError("give the directory to write into with --output DIR (or --estimate)") }
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
        if let dumpOpt { _ = try Self.split(dumpOpt) }
    }

    func run() throws {
        let logger = logging.makeLogger(quietest: progress ? .notice : .warning)
        var configuration = DumpConfiguration(connection: connection.parameters)
        if connection.promptPassword { configuration.connection.password = try readPassword() }
        configuration.databases = database.map(DatabasePattern.init)
        configuration.excludeDatabases = excludeDatabase.map(DatabasePattern.init)
        configuration.format = format
        configuration.dumpOptions = try dumpOpt.map(Self.split) ?? []
        configuration.binDirectory = binDir.map(absolute)
        configuration.jobs = jobs
        configuration.abortOnError = abortOnError
        if estimate {
            try printEstimate(configuration, logger: logger)
            return
        }
        let directory = absolute(output!)
        // Made when the first file is written (after the server answered); an existing one must be empty.
        if let entries = try? directoryEntries(directory), !entries.isEmpty {
            logger.error("\(directory) is not empty: dump into a new or empty directory")
            throw ExitCode(2)
        }
        cancelJobOnSignals()
        let summary: DumpSummary
        do {
            summary = try DumpJob(configuration: configuration, output: DirectoryDumpOutput(root: directory), observer: JobObserver(logger: logger),
                                  cancellation: processCancellation).run()
        } catch {
            logger.error("\(error)")
            throw ExitCode(error.exitCode)
        }
        if json {
            try printJSON(summary)
        } else {
            let failed = summary.databases.filter { !$0.ok }
            print("dump \(summary.status == "ok" ? "complete" : "partial"): \(directory)")
            print("  \(summary.databases.count - failed.count) of \(summary.databases.count) database(s) dumped; \(summary.globals.joined(separator: ", "))")
            for warning in summary.warnings { print("  warning: \(warning)") }
            for database in failed { print("  FAILED \(database.name): \(database.error ?? "")") }
        }
        if summary.status != "ok" { throw ExitCode(1) }
    }

    private func printEstimate(_ configuration: DumpConfiguration, logger: Logger) throws {
        let databases: [DumpJob.DatabaseInfo]
        do { databases = try DumpJob.estimate(configuration) } catch {
            logger.error("\(error)")
            throw ExitCode(error.exitCode)
        }
        let total = databases.reduce(0) { $0 + $1.size }
        if json {
            struct Entry: Encodable { let name: String; let size: UInt64 }
            struct Output: Encodable { let databases: [Entry]; let total: UInt64 }
            try printJSON(Output(databases: databases.map { Entry(name: $0.name, size: $0.size) }, total: total))
            return
        }
        let width = max(8, databases.map(\.name.count).max() ?? 0)
        print("DATABASE".padded(to: width) + "  SIZE (bytes)")
        for database in databases { print(database.name.padded(to: width) + "  \(database.size)") }
        print("total".padded(to: width) + "  \(total)")
    }
}

struct RestoreDump: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore-dump",
        abstract: "Restore roles, or one database, from a pgkeep dump.",
        discussion: """
            --roles loads roles.sql (roles that already exist are reported, the rest go on).
            --database NAME: into the existing database of that name, its data only; or, when it \
            does not exist, created from createdb.sql (owner, encoding, locale, settings, grants) \
            and restored whole. --new-name NEW creates NEW instead. --replace never refuses when \
            the target exists, before changing anything; --replace always drops it and creates it \
            again (never template1, postgres, or a database with active connections). --table \
            restores single tables into an existing database.

            Examples:
              pgkeep restore-dump /backups/db1-dump -d 'host=db2 user=postgres' --roles
              pgkeep restore-dump /backups/db1-dump -d 'host=db2 user=postgres' --database app --new-name app_copy
              pgkeep restore-dump /backups/db1-dump -d 'host=db1 user=postgres' --database app --table orders
            """)

    @Argument(help: ArgumentHelp("The dump directory.", valueName: "dump"))
    var dump: String

    @OptionGroup(title: "Connection") var connection: ConnectionOptions

    @Flag(name: .long, help: "Restore the roles (roles.sql).")
    var roles = false

    @Option(name: .long, help: ArgumentHelp("The database to restore.", valueName: "name"))
    var database: String?

    @Option(name: .customLong("new-name"), help: ArgumentHelp("Create and restore it under this name.", valueName: "name"))
    var newName: String?

    @Option(name: .long, help: ArgumentHelp("never: refuse when the target exists; always: drop and create it again.", valueName: "never|always"))
    var replace: DumpRestoreJob.Replace?

    @Option(name: [.customShort("t"), .long], help: ArgumentHelp("Restore only this table into the existing database (repeatable).", valueName: "table"))
    var table: [String] = []

    @Flag(name: [.customShort("s"), .customLong("schema-only")], help: "Restore the schema, not the data.")
    var schemaOnly = false

    @Option(name: [.customShort("j"), .long], help: ArgumentHelp("pg_restore's parallel jobs.", valueName: "N"))
    var jobs: Int = 1

    @Option(name: .customLong("bin-dir"), help: ArgumentHelp("Where psql and pg_restore are.", valueName: "directory"))
    var binDir: String?

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard roles != (database != nil) else { throw ValidationError("give --roles or --database NAME") }
        if roles && (newName != nil || replace != nil || !table.isEmpty || schemaOnly) {
            throw ValidationError("--new-name, --replace, --table and --schema-only go with --database")
        }
        if !table.isEmpty && (newName != nil || replace != nil) { throw ValidationError("--table restores into the existing database: no --new-name or --replace") }
    }

    func run() throws {
        let logger = logging.makeLogger(quietest: .notice)
        var parameters = connection.parameters
        if connection.promptPassword { parameters.password = try readPassword() }
        let action: DumpRestoreJob.Action = roles ? .roles
            : .database(name: database!, newName: newName, replace: replace, tables: table, schemaOnly: schemaOnly, jobs: jobs)
        var configuration = DumpRestoreJob.Configuration(dump: absolute(dump), connection: parameters, action: action)
        configuration.binDirectory = binDir.map(absolute)
        do {
            cancelJobOnSignals()
            let summary = try DumpRestoreJob(configuration: configuration, observer: JobObserver(logger: logger), cancellation: processCancellation).run()
            if roles {
                print("roles restored" + (summary.existingRoles.isEmpty ? "" : "; already there: \(summary.existingRoles.joined(separator: ", "))"))
            } else {
                print("restored \(database!) into \(summary.database!)" + (summary.created ? " (created)" : summary.dataOnly ? " (data only: it existed)" : ""))
            }
        } catch {
            logger.error("\(error)")
            throw ExitCode(error.exitCode)
        }
    }
}
