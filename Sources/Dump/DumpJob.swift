#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import FoundationEssentials
import Logging
import ArchiveStream
import PGConnection
import PGKeep
import PGWire
import Sinks

/// What `pgkeep dump` (and the plugin's dump mode) asks for.
public struct DumpConfiguration: Sendable {
    public enum Format: String, Sendable, CaseIterable { case custom, plain }

    public var connection: ConnectionParameters
    /// psql-style patterns; none: every database that allows connections, templates excepted.
    public var databases: [DatabasePattern] = []
    public var excludeDatabases: [DatabasePattern] = []
    public var format: Format = .custom
    /// More pg_dump arguments (`--dump-opt`), already split.
    public var dumpOptions: [String] = []
    public var binDirectory: String?
    public var jobs = 1
    public var abortOnError = false

    public init(connection: ConnectionParameters) { self.connection = connection }
}

/// Where a dump's files go: a directory (each file written to NAME.tmp, fsynced, renamed), or
/// the plugin's stream to Bacula. `write` hands the producer a stage for the file's bytes.
public protocol DumpOutput: AnyObject, Sendable {
    func write(_ relativePath: String, _ produce: (ByteStage) throws -> Void) throws -> UInt64
}

/// The result: each database's outcome, the cluster-wide files, and whether all went well.
public struct DumpSummary: Sendable, Encodable {
    public struct Database: Sendable, Encodable {
        public var name: String
        public var directory: String
        public var ok: Bool
        public var bytes: UInt64
        public var error: String?
    }
    public var serverVersion: String
    public var tools: String
    public var globals: [String] = []
    public var warnings: [String] = []
    public var databases: [Database] = []
    public var status: String { databases.allSatisfy(\.ok) ? "ok" : "partial" }

    enum CodingKeys: String, CodingKey { case serverVersion = "server_version", tools, globals, warnings, databases, status }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(serverVersion, forKey: .serverVersion)
        try container.encode(tools, forKey: .tools)
        try container.encode(globals, forKey: .globals)
        try container.encode(warnings, forKey: .warnings)
        try container.encode(databases, forKey: .databases)
        try container.encode(status, forKey: .status)
    }
}

/// `pgkeep dump`: a cluster's logical backup in the Bacula PostgreSQL plugin's layout —
///
///     roles.sql  tablespaces.sql  postgresql.conf  pg_hba.conf  pg_ident.conf  databases.json
///     <db>/createdb.sql  <db>/schema.sql  <db>/data.sqlc (or data.sql)
///
/// on PostgreSQL's own pg_dumpall and pg_dump (at least the server's major version). One
/// database failing is reported and the rest go on, unless `abortOnError`.
public final class DumpJob: Sendable {
    private let configuration: DumpConfiguration
    private let output: DumpOutput
    private let logger: Logger
    private let cancellation: CancellationToken

    public init(configuration: DumpConfiguration, output: DumpOutput, observer: JobObserver,
                cancellation: CancellationToken = CancellationToken()) {
        self.configuration = configuration
        self.output = output
        self.logger = observer.logger
        self.cancellation = cancellation
    }

    /// The message the Bacula plugin gives when the server cannot be reached.
    public static let unreachable = "Can't reach PostgreSQL server to get database config."

    public func run() throws(PGKeepError) -> DumpSummary {
        do {
            return try runUnmapped()
        } catch {
            throw PGKeepError.mapping(error)
        }
    }

    private func runUnmapped() throws -> DumpSummary {
        let server = try Self.connect(configuration.connection)
        let version = server.serverVersion
        let programs = try ClientPrograms.find(binDirectory: configuration.binDirectory)
        guard programs.major >= version.major else {
            throw PGKeepError.invalidConfiguration("pg_dump \(programs.major) (\(programs.directory)) is older than the server (\(version.major)): pg_dump must be at least the server's version; name the directory of a newer one (--bin-dir, or the plugin's bin_dir=)")
        }
        let databases = try Self.databases(server, configuration)
        let superuser = try server.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").first?.first == "t"
        logger.info("dumping \(databases.count) database(s) of PostgreSQL \(version) with \(programs.directory)/pg_dump \(programs.major)")
        var summary = DumpSummary(serverVersion: version.description, tools: programs.directory)
        let environment = configuration.connection.password.map { ["PGPASSWORD": $0] } ?? [:]
        let base = try Self.conninfo(configuration.connection)

        // Cluster-wide: roles (with passwords when we may read them), tablespaces, config files.
        var roleArguments = [programs.path("pg_dumpall"), "--roles-only", "-d", base]
        if !superuser {
            roleArguments.append("--no-role-passwords")
            summary.warnings.append("roles.sql has no passwords: reading them needs a superuser")
        }
        try dumpGlobal("roles.sql", roleArguments, environment: environment, summary: &summary)
        try dumpGlobal("tablespaces.sql", [programs.path("pg_dumpall"), "--tablespaces-only", "-d", base], environment: environment, summary: &summary)
        try dumpConfigFiles(server, superuser: superuser, summary: &summary)

        // Each database, N at a time.
        let results = Mutex<[DumpSummary.Database]>([])
        let firstFailure = Mutex<PGKeepError?>(nil)
        let queue = Mutex(databases)
        let group = DispatchGroup()
        for _ in 0..<max(1, min(configuration.jobs, databases.count)) {
            group.enter()
            do { try OSThread.detach(name: "pgkeep-dump") { [self] in
                defer { group.leave() }
                while let database = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                    if cancellation.isCancelled || (configuration.abortOnError && firstFailure.withLock({ $0 }) != nil) { return }
                    let outcome = dumpDatabase(database, programs: programs, base: base, environment: environment)
                    results.withLock { $0.append(outcome.result) }
                    if let error = outcome.error { firstFailure.withLock { if $0 == nil { $0 = error } } }
                }
            } } catch {
                group.leave()
                firstFailure.withLock { if $0 == nil { $0 = PGKeepError(.internalError, "dump: \(error)") } }
                break
            }
        }
        group.wait()
        if cancellation.isCancelled { throw PGKeepError(.cancelled, "dump cancelled") }
        let order = Dictionary(uniqueKeysWithValues: databases.enumerated().map { ($1.name, $0) })
        summary.databases = results.withLock { $0 }.sorted { order[$0.name]! < order[$1.name]! }
        if configuration.abortOnError, let failure = firstFailure.withLock({ $0 }) { throw failure }
        // Which directory holds which database.
        let map = summary.databases.map { ["name": $0.name, "directory": $0.directory] }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = try encoder.encode(map)
        _ = try output.write("databases.json") { stage in try (Array(json) + [0x0A]).withUnsafeBytes { try stage.consume($0) } }
        return summary
    }

    // MARK: Connecting

    static func connect(_ parameters: ConnectionParameters) throws -> ReplicationConnection {
        do {
            return try ReplicationConnection(parameters, mode: .sql)
        } catch {
            var mapped = PGKeepError.mapping(error)
            let reason = mapped.message
            mapped.message = Self.unreachable + " " + reason
            throw mapped
        }
    }

    /// The connection string each program gets (the database is added per program).
    static func conninfo(_ parameters: ConnectionParameters) throws -> String {
        var parts: [String] = []
        if let text = parameters.connectionString, !text.isEmpty {
            parts.append(text.contains("=") || text.hasPrefix("postgres") ? text : "dbname=" + ConnectionParameters.conninfoValue(text))
        }
        if let host = parameters.host { parts.append("host=" + ConnectionParameters.conninfoValue(host)) }
        if let port = parameters.port { parts.append("port=" + ConnectionParameters.conninfoValue(port)) }
        if let user = parameters.user { parts.append("user=" + ConnectionParameters.conninfoValue(user)) }
        if parts.first?.hasPrefix("postgres") == true, parts.count > 1 {
            throw PGKeepError.invalidConfiguration("give -h/-p/-U inside the URI, or use a key=value connection string")
        }
        return parts.joined(separator: " ")
    }

    /// Every byte but ASCII letters and digits as %XX: safe in any part of a URI.
    static func percentEncoded(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in text.utf8 {
            if (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func conninfo(_ base: String, database: String) -> String {
        if base.hasPrefix("postgres") {
            // A URI names the database in its path: append as a parameter instead.
            return base + (base.contains("?") ? "&" : "?") + "dbname=" + percentEncoded(database)
        }
        return base + " dbname=" + ConnectionParameters.conninfoValue(database)
    }

    // MARK: Databases

    public struct DatabaseInfo: Sendable {
        public var name: String
        public var size: UInt64
    }

    /// Every non-template database that allows connections, chosen by the patterns.
    static func databases(_ server: ReplicationConnection, _ configuration: DumpConfiguration) throws -> [DatabaseInfo] {
        let rows = try server.query("SELECT datname, pg_database_size(oid) FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname")
        return rows.compactMap { row in
            guard let name = row[0] else { return nil }
            if !configuration.databases.isEmpty, !configuration.databases.contains(where: { $0.matches(name) }) { return nil }
            if configuration.excludeDatabases.contains(where: { $0.matches(name) }) { return nil }
            return DatabaseInfo(name: name, size: UInt64(row[1] ?? "0") ?? 0)
        }
    }

    /// `--estimate`: each chosen database's size, as pg_database_size says.
    public static func estimate(_ configuration: DumpConfiguration) throws(PGKeepError) -> [DatabaseInfo] {
        do {
            return try databases(try connect(configuration.connection), configuration)
        } catch {
            throw PGKeepError.mapping(error)
        }
    }

    private func dumpDatabase(_ database: DatabaseInfo, programs: ClientPrograms, base: String,
                              environment: [String: String]) -> (result: DumpSummary.Database, error: PGKeepError?) {
        let directory = DumpDirectoryName.encode(database.name)
        var result = DumpSummary.Database(name: database.name, directory: directory, ok: false, bytes: 0, error: nil)
        do {
            let connection = Self.conninfo(base, database: database.name)
            let sql = try CreateDatabaseScript.make(for: database.name, connection: configuration.connection)
            result.bytes += try output.write(directory + "/createdb.sql") { stage in try Array(sql.utf8).withUnsafeBytes { try stage.consume($0) } }
            result.bytes += try runTool([programs.path("pg_dump"), "--schema-only"] + configuration.dumpOptions + ["-d", connection],
                                        into: directory + "/schema.sql",
                                        environment: environment)
            let data = configuration.format == .custom ? "data.sqlc" : "data.sql"
            let formatArguments = configuration.format == .custom ? ["-Fc"] : []
            result.bytes += try runTool([programs.path("pg_dump")] + formatArguments + configuration.dumpOptions + ["-d", connection],
                                        into: directory + "/" + data, environment: environment)
            result.ok = true
            logger.notice("dumped database \(database.name)", metadata: ["database": "\(database.name)", "bytes": "\(result.bytes)"])
            return (result, nil)
        } catch {
            let mapped = PGKeepError.mapping(error)
            result.error = mapped.message
            logger.error("database \(database.name) was not dumped: \(mapped.message)", metadata: ["database": "\(database.name)"])
            return (result, mapped)
        }
    }

    private func dumpGlobal(_ name: String, _ arguments: [String], environment: [String: String], summary: inout DumpSummary) throws {
        _ = try runTool(arguments, into: name, environment: environment)
        summary.globals.append(name)
    }

    /// Runs a client program with its standard output streamed into `path`; a failure names the
    /// program's own words.
    private func runTool(_ arguments: [String], into path: String, environment: [String: String]) throws -> UInt64 {
        var status: ChildProcess.Status?
        let bytes = try output.write(path) { stage in
            status = try ChildProcess.run(arguments, environment: environment, isCancelled: { [cancellation] in cancellation.isCancelled }) { chunk in
                try stage.consume(chunk)
            }
            guard status!.succeeded else {
                let program = PathName.lastComponent(arguments[0])
                throw PGKeepError(.toolFailed, "\(program) failed (exit \(status!.exitCode)) writing \(path): \(status!.stderr)")
            }
        }
        return bytes
    }

    /// postgresql.conf, pg_hba.conf, pg_ident.conf: through SQL when the role may read server
    /// files, else from this machine's disk when the server is local and they are readable, else
    /// skipped with a warning naming the privilege missing.
    private func dumpConfigFiles(_ server: ReplicationConnection, superuser: Bool, summary: inout DumpSummary) throws {
        var canRead = superuser
        if !canRead { canRead = try server.query("SELECT pg_has_role(current_user, 'pg_read_server_files', 'MEMBER')").first?.first == "t" }
        for (name, setting) in [("postgresql.conf", "config_file"), ("pg_hba.conf", "hba_file"), ("pg_ident.conf", "ident_file")] {
            guard let path = try server.query("SELECT current_setting('\(setting)')").first?.first ?? nil else { continue }
            if canRead {
                let rows = try server.query("SELECT encode(pg_read_binary_file(current_setting('\(setting)')), 'base64')")
                guard let text = rows.first?.first ?? nil, let data = Data(base64Encoded: text, options: .ignoreUnknownCharacters) else { continue }
                _ = try output.write(name) { stage in try data.withUnsafeBytes { try stage.consume($0) } }
                summary.globals.append(name)
            } else if server.isLocal, access(path, R_OK) == 0 {
                _ = try output.write(name) { stage in try forEachChunk(ofFileAt: path) { try stage.consume($0) } }
                summary.globals.append(name)
            } else {
                let warning = "\(name) skipped: reading it needs a superuser or the pg_read_server_files role (or this machine's access to \(path))"
                summary.warnings.append(warning)
                logger.warning("\(warning)")
            }
        }
    }
}

import Synchronization

/// Writes a dump into a directory: each file to NAME.tmp as it streams, fsynced, renamed; a
/// failed file leaves nothing under its final name.
public final class DirectoryDumpOutput: DumpOutput {
    public let root: String

    public init(root: String) { self.root = root }

    public func write(_ relativePath: String, _ produce: (ByteStage) throws -> Void) throws -> UInt64 {
        let path = root + "/" + relativePath
        let slash = path.lastIndex(of: "/")!
        let directory = String(path[..<slash]), name = String(path[path.index(after: slash)...])
        try TargetDirectory.makeDirectories(directory, mode: 0o700)
        let temporary = name + ".tmp"
        unlink(directory + "/" + temporary)
        do {
            let sink = try FileSink(path: directory + "/" + temporary, syncOnFinish: true)
            try produce(sink)
            try sink.finish()
            try Durability.durableReplace(in: directory, from: temporary, to: name)
            return sink.bytesWritten
        } catch {
            unlink(directory + "/" + temporary)
            throw error
        }
    }
}
