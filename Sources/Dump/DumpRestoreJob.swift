#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Logging
import PGConnection
import PGKeep
import PGWire
import Sinks

/// `pgkeep restore-dump`: a dump's roles into a cluster, or one database — into the existing
/// database of that name (data only), or created first from createdb.sql (under its own name or
/// a new one) and restored whole; single tables into an existing database.
public final class DumpRestoreJob {
    public enum Replace: String, Sendable, CaseIterable {
        /// Refuse when the target database exists, before touching anything.
        case never
        /// Drop the existing database and create it again from the dump.
        case always
    }

    public enum Action: Sendable {
        case roles
        case database(name: String, newName: String?, replace: Replace?, tables: [String], schemaOnly: Bool, jobs: Int)
    }

    public struct Configuration: Sendable {
        public var dump: String
        public var connection: ConnectionParameters
        public var binDirectory: String?
        public var action: Action
        public init(dump: String, connection: ConnectionParameters, action: Action) {
            self.dump = dump
            self.connection = connection
            self.action = action
        }
    }

    public struct Summary: Sendable, Encodable {
        public var database: String?
        public var created = false
        public var dataOnly = false
        public var existingRoles: [String] = []
    }

    private let configuration: Configuration
    private let logger: Logger
    private let cancellation: CancellationToken

    public init(configuration: Configuration, observer: JobObserver, cancellation: CancellationToken = CancellationToken()) {
        self.configuration = configuration
        self.logger = observer.logger
        self.cancellation = cancellation
    }

    public func run() throws(PGKeepError) -> Summary {
        do {
            switch configuration.action {
            case .roles: return try restoreRoles()
            case .database(let name, let newName, let replace, let tables, let schemaOnly, let jobs):
                return try restoreDatabase(name, newName: newName, replace: replace, tables: tables, schemaOnly: schemaOnly, jobs: jobs)
            }
        } catch {
            throw PGKeepError.mapping(error)
        }
    }

    // MARK: Roles

    /// roles.sql through psql, going on past roles that already exist (reported by name, from the
    /// server's catalog, not from psql's words).
    private func restoreRoles() throws -> Summary {
        let script = configuration.dump + "/roles.sql"
        guard let bytes = try readWholeFile(script) else { throw PGKeepError.invalidConfiguration("\(script) does not exist") }
        let server = try DumpJob.connect(configuration.connection)
        let dumped = String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("CREATE ROLE "), line.hasSuffix(";") else { return nil }
            return String(line.dropFirst("CREATE ROLE ".count).dropLast())
        }
        var summary = Summary()
        if !dumped.isEmpty {
            let list = dumped.map { "quote_ident(\(quoteLiteral(Self.unquote($0))))" }.joined(separator: ", ")
            let existing = try server.query("SELECT rolname FROM pg_roles WHERE quote_ident(rolname) = ANY (ARRAY[\(list)]) ORDER BY 1")
            summary.existingRoles = existing.compactMap { $0.first ?? nil }
            if !summary.existingRoles.isEmpty {
                logger.warning("these roles already exist and keep their attributes where roles.sql's CREATE ROLE fails: \(summary.existingRoles.joined(separator: ", "))")
            }
        }
        let programs = try ClientPrograms.find(binDirectory: configuration.binDirectory)
        try runQuietly([programs.path("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=0", "-d", try DumpJob.conninfo(configuration.connection), "-f", script],
                       acceptingErrors: true)
        return summary
    }

    static func unquote(_ identifier: String) -> String {
        guard identifier.hasPrefix("\""), identifier.hasSuffix("\""), identifier.count >= 2 else { return identifier }
        return String(identifier.dropFirst().dropLast().replacing("\"\"", with: "\""))
    }

    // MARK: A database

    private func restoreDatabase(_ name: String, newName: String?, replace: Replace?, tables: [String], schemaOnly: Bool, jobs: Int) throws -> Summary {
        let directory = try locate(name)
        let target = newName ?? name
        let programs = try ClientPrograms.find(binDirectory: configuration.binDirectory)
        let server = try DumpJob.connect(configuration.connection)
        let exists = try !server.query("SELECT 1 FROM pg_database WHERE datname = \(quoteLiteral(target))").isEmpty
        let custom = access(directory + "/data.sqlc", F_OK) == 0
        let data = directory + (custom ? "/data.sqlc" : "/data.sql")
        guard access(data, R_OK) == 0 else { throw PGKeepError.invalidConfiguration("\(directory) holds no data.sqlc or data.sql") }
        var summary = Summary(database: target)
        let base = try DumpJob.conninfo(configuration.connection)
        let targetConnection = DumpJob.conninfo(base, database: target)

        // Everything that can be refused is refused before anything changes.
        if exists && replace == .never {
            throw PGKeepError.invalidConfiguration("database \(target) exists and replace is never (--replace never, or Bacula's replace=never): nothing was changed")
        }
        if !tables.isEmpty {
            guard exists else { throw PGKeepError.invalidConfiguration("single tables are restored into an existing database; \(target) does not exist") }
            guard custom else { throw PGKeepError.invalidConfiguration("single tables need a custom-format dump (data.sqlc)") }
        }
        if exists && replace == .always {
            if ["template0", "template1", "postgres"].contains(target) {
                throw PGKeepError.invalidConfiguration("\(target) cannot be replaced: it is one of the cluster's own databases; restore into a new name with --new-name")
            }
            let active = try server.query("SELECT count(*) FROM pg_stat_activity WHERE datname = \(quoteLiteral(target)) AND pid <> pg_backend_pid()").first?.first ?? "0"
            guard active == "0" else {
                throw PGKeepError(.serverState, "\(target) cannot be replaced: it has \(active ?? "?") active connection(s)", hint: "disconnect them (pg_terminate_backend) or restore under a new name")
            }
        }
        if exists && !custom && replace != .always && tables.isEmpty {
            throw PGKeepError.invalidConfiguration("\(target) exists: a data-only restore needs a custom-format dump (data.sqlc); use --replace always or --new-name")
        }

        if !tables.isEmpty {
            var arguments = [programs.path("pg_restore"), "-d", targetConnection]
            for table in tables { arguments += ["-t", table] }
            if schemaOnly { arguments.append("--schema-only") }
            try runQuietly(arguments + [data])
            return summary
        }
        if exists && replace != .always {
            logger.info("\(target) exists: restoring its data only")
            try runQuietly([programs.path("pg_restore"), "--data-only", "--disable-triggers", "-j", String(max(1, jobs)), "-d", targetConnection, data])
            summary.dataOnly = true
            return summary
        }
        if exists {
            logger.notice("dropping database \(target) to replace it")
            _ = try server.query("DROP DATABASE \(try quoteIdent(server, target))")
        }
        // Created from createdb.sql: owner, encoding, locale, settings, grants (under the new name).
        guard let scriptBytes = try readWholeFile(directory + "/createdb.sql") else {
            throw PGKeepError.invalidConfiguration("\(directory)/createdb.sql does not exist")
        }
        var script = String(decoding: scriptBytes, as: UTF8.self)
        if newName != nil { script = try CreateDatabaseScript.renamed(script, to: target, quotedNewName: try quoteIdent(server, target)) }
        let scriptFile = PathName.temporaryDirectory + "/pgkeep-createdb-\(getpid())-\(UUID().uuidString.prefix(8)).sql"
        try Durability.writeFileAtomically(Array(script.utf8), named: PathName.lastComponent(scriptFile),
                                           in: PathName.directory(scriptFile), sync: false)
        defer { unlink(scriptFile) }
        try runQuietly([programs.path("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", base, "-f", scriptFile])
        summary.created = true
        if custom {
            var arguments = [programs.path("pg_restore"), "-j", String(max(1, jobs)), "-d", targetConnection]
            if schemaOnly { arguments.append("--schema-only") }
            try runQuietly(arguments + [data])
        } else {
            try runQuietly([programs.path("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", targetConnection, "-f", data])
        }
        return summary
    }

    /// The dump directory of database `name` (databases.json, else the encoded name).
    private func locate(_ name: String) throws -> String {
        if let bytes = try readWholeFile(configuration.dump + "/databases.json"),
           let entries = try? JSONDecoder().decode([[String: String]].self, from: Data(bytes)),
           let directory = entries.first(where: { $0["name"] == name })?["directory"] {
            return configuration.dump + "/" + directory
        }
        let directory = configuration.dump + "/" + DumpDirectoryName.encode(name)
        guard access(directory, F_OK) == 0 else { throw PGKeepError.invalidConfiguration("the dump in \(configuration.dump) has no database \(name)") }
        return directory
    }

    private func quoteIdent(_ server: ReplicationConnection, _ name: String) throws -> String {
        try server.query("SELECT quote_ident(\(quoteLiteral(name)))").first?.first.flatMap { $0 } ?? "\"\(name)\""
    }

    private func runQuietly(_ arguments: [String], acceptingErrors: Bool = false) throws {
        let environment = configuration.connection.password.map { ["PGPASSWORD": $0] } ?? [:]
        let status = try ChildProcess.run(arguments, environment: environment, isCancelled: { [cancellation] in cancellation.isCancelled }) { _ in }
        if !status.stderr.isEmpty { logger.info("\(PathName.lastComponent(arguments[0])): \(status.stderr)") }
        guard status.succeeded || acceptingErrors else {
            throw PGKeepError(.toolFailed, "\(PathName.lastComponent(arguments[0])) failed (exit \(status.exitCode)): \(status.stderr)")
        }
    }
}
