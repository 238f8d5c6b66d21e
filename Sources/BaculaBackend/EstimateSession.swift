#if canImport(Glibc)
import Glibc
#endif
import Dump
import FoundationEssentials
import Logging
import PGConnection
import PGKeep
import PGWire
import PluginFrames
import Repository

/// `estimate … listing`: the virtual files a job of this level would send, with their sizes, from
/// the server's catalog and file system functions — no backup taken, no WAL streamed.
///
/// PITR: a Full lists the data directory as the server sees it (pg_ls_dir and pg_stat_file:
/// superuser, or EXECUTE on both granted), less what BASE_BACKUP leaves out; without that right,
/// one entry per database with its size. A Differential lists the files modified since the full
/// (an upper bound: the backup itself sends only changed pages). An Incremental lists the WAL
/// segments from the state's last position to the server's current one.
/// Dump: each file of the layout, a database's data.sqlc with the database's size.
struct EstimateSession {
    let options: PluginOptions
    let level: Character
    let channel: FrameChannel
    let logger: Logger

    private func connect() throws -> ReplicationConnection {
        try ReplicationConnection(options.connection, mode: .sql)
    }

    private func list(_ path: String, size: UInt64, modified: Int64 = 0, directory: Bool = false) throws {
        try channel.send(.file(.init(path: path, size: Int64(size), mode: directory ? 0o700 : 0o600, modificationTime: modified,
                                     type: directory ? .directory : .regular)))
        if !directory { try channel.send(.end) }
    }

    // MARK: PITR

    func pitr() throws {
        let server = try connect()
        let layout = RepositoryLayout(root: options.stateDirectory + "/" + options.service)
        let catalog = access(layout.configFile, F_OK) == 0 ? try Catalog.load(layout) : Catalog(records: [])
        let systemIdentifier = try server.query("SELECT system_identifier FROM pg_control_system()").first?.first ?? nil
        let usable = catalog.newestFull.map { $0.systemIdentifier == systemIdentifier } ?? false
        var effective = level == "I" || level == "D" ? level : "F"
        if effective != "F" && !usable {
            channel.message(.info, "no usable state for this service in \(layout.root): the job would send a full backup")
            effective = "F"
        }
        if effective == "I" {
            try listWAL(server, from: catalog.newest.flatMap { LSN($0.walEnd) }, layout: layout)
            return
        }
        var since: Int64?
        if effective == "D", let full = catalog.newestFull, let date = Repository.date(full.startedAt) {
            since = Int64(date.timeIntervalSince1970)
        }
        try listDataDirectory(server, modifiedSince: since)
        let current = try server.query("SELECT pg_current_wal_lsn()").first?.first.flatMap { $0 }.flatMap(LSN.init)
        try listWAL(server, from: current, layout: layout)
    }

    /// What BASE_BACKUP leaves out of the data directory (basebackup.c's excludeDirContents and excludeFiles).
    static let excludedContents: Set<String> = ["pg_wal", "pg_replslot", "pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots",
                                                "pg_stat_tmp", "pg_subtrans"]
    static let excludedFiles: Set<String> = ["postmaster.pid", "postmaster.opts", "pg_internal.init", "backup_label.old",
                                             "tablespace_map.old", "current_logfiles.tmp", "postgresql.auto.conf.tmp"]

    static func isExcluded(_ path: String) -> Bool {
        let parts = path.split(separator: "/")
        guard let name = parts.last else { return true }
        if parts.count > 1, excludedContents.contains(String(parts[0])) { return true }
        return excludedFiles.contains(String(name)) || name.hasPrefix("pgsql_tmp")
    }

    private func listDataDirectory(_ server: ReplicationConnection, modifiedSince: Int64?) throws {
        let walk = """
            WITH RECURSIVE tree(path, size, isdir, mtime) AS (
              SELECT e.name, s.size, s.isdir, extract(epoch FROM s.modification)::bigint
                FROM pg_ls_dir('.', true, false) AS e(name), LATERAL pg_stat_file(e.name, true) AS s
              UNION ALL
              SELECT t.path || '/' || e.name, s.size, s.isdir, extract(epoch FROM s.modification)::bigint
                FROM tree t, LATERAL pg_ls_dir(t.path, true, false) AS e(name), LATERAL pg_stat_file(t.path || '/' || e.name, true) AS s
               WHERE t.isdir
            )
            SELECT path, size, isdir, mtime FROM tree WHERE size IS NOT NULL ORDER BY path
            """
        guard let rows = try walkIfPermitted(server, walk) else {
            channel.message(.info, "listing each file needs a superuser or EXECUTE on pg_ls_dir and pg_stat_file; listing each database's size instead")
            for row in try server.query("SELECT oid, pg_database_size(oid) FROM pg_database WHERE datallowconn ORDER BY oid") {
                guard let oid = row[0], let size = row[1].flatMap({ UInt64($0) }) else { continue }
                try list(options.prefix + "data/base/\(oid)", size: size)
            }
            return
        }
        let tablespaces = Dictionary(uniqueKeysWithValues: try server.query(
            "SELECT oid, pg_tablespace_location(oid) FROM pg_tablespace WHERE pg_tablespace_location(oid) LIKE '/%'")
            .compactMap { row -> (String, Bool)? in row[0].map { ($0, true) } })
        var count = 0, bytes: UInt64 = 0
        for row in rows {
            guard let path = row[0], !Self.isExcluded(path), let size = row[1].flatMap({ UInt64($0) }) else { continue }
            let isDirectory = row[2] == "t"
            let modified = row[3].flatMap { Int64($0) } ?? 0
            if let modifiedSince, !isDirectory, modified < modifiedSince { continue }
            // pg_tblspc/<oid>/… of a tablespace elsewhere: sent as tablespaces/<oid>/….
            var virtual = options.prefix + "data/" + path
            let parts = path.split(separator: "/", maxSplits: 2)
            if parts.count >= 2, parts[0] == "pg_tblspc", tablespaces[String(parts[1])] != nil {
                guard parts.count == 3 else { continue }
                virtual = options.prefix + "tablespaces/\(parts[1])/\(parts[2])"
            }
            try list(virtual, size: isDirectory ? 0 : size, modified: modified, directory: isDirectory)
            if !isDirectory { count += 1; bytes += size }
        }
        channel.message(.info, "\(count) file(s), \(bytes) bytes\(modifiedSince == nil ? "" : " modified since the full (the differential sends only their changed pages)")")
    }

    /// The walk's rows; nil when the role may not call pg_ls_dir (42501).
    private func walkIfPermitted(_ server: ReplicationConnection, _ query: String) throws -> [[String?]]? {
        do {
            return try server.query(query)
        } catch {
            if case .server(let failure) = error, failure.sqlState == "42501" { return nil }
            throw error
        }
    }

    /// The segments from `from` (or the current position) to the current one, whole.
    private func listWAL(_ server: ReplicationConnection, from: LSN?, layout: RepositoryLayout) throws {
        let rows = try server.query("SELECT pg_current_wal_lsn(), timeline_id, (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size') FROM pg_control_checkpoint()")
        guard let row = rows.first, let current = row[0].flatMap({ LSN($0) }), let timeline = row[1].flatMap({ UInt32($0) }),
              let bytes = row[2].flatMap({ UInt64($0) }), let segmentSize = WALSegmentSize(bytes: bytes) else {
            throw PGKeepError.protocolViolation("the server did not say its WAL position")
        }
        let start = segmentSize.segmentStart(of: from ?? current)
        var segment = start
        while segment <= current {
            let name = segmentSize.fileName(segment: segment.rawValue / bytes, timeline: TimelineID(timeline))
            try list(options.prefix + "wal/" + name, size: bytes)
            segment = segment + bytes
        }
    }

    // MARK: Dump

    func dump() throws {
        if level == "I" || level == "D" {
            channel.message(.info, "a dump is always whole: this \(PITRBackupSession.levelName(level)) job would take a full dump")
        }
        var configuration = DumpConfiguration(connection: options.connection)
        configuration.databases = options.database.map(DatabasePattern.init)
        let databases = try DumpJob.estimate(configuration)
        for name in ["roles.sql", "tablespaces.sql", "postgresql.conf", "pg_hba.conf", "pg_ident.conf"] {
            try list(options.prefix + name, size: 0)
        }
        for database in databases {
            let directory = options.prefix + DumpDirectoryName.encode(database.name) + "/"
            try list(directory + "createdb.sql", size: 0)
            try list(directory + "schema.sql", size: 0)
            try list(directory + "data.sqlc", size: database.size)
        }
        try list(options.prefix + "databases.json", size: 0)
        channel.message(.info, "\(databases.count) database(s), \(databases.reduce(0) { $0 + $1.size }) bytes (pg_database_size)")
    }
}
