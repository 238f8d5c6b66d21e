#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Codecs
import Manifest
import PGConnection
import PGKeep
import PGWire
import Sinks
import WAL

/// An opened repository: its configuration, and the operations every job shares — checking the
/// cluster, naming and committing backups, reading their manifests, the WAL archive's end.
public struct Repository: Sendable {
    public let layout: RepositoryLayout
    public let config: RepositoryConfig

    public static func open(_ layout: RepositoryLayout) throws -> Repository {
        guard let bytes = try readWholeFile(layout.configFile) else {
            throw PGKeepError.invalidConfiguration("\(layout.root) is not a pgkeep repository (no pgkeep.repo): create one with pgkeep repo init --repo \(layout.root) -d CONNINFO")
        }
        do {
            return Repository(layout: layout, config: try JSONDecoder().decode(RepositoryConfig.self, from: Data(bytes)))
        } catch {
            throw PGKeepError.verification("\(layout.configFile) cannot be read: \(error)")
        }
    }

    /// Another cluster's server is refused by every command: its WAL and files would mix with ours.
    public func checkCluster(systemIdentifier: String) throws {
        guard systemIdentifier == config.systemIdentifier else {
            throw PGKeepError(.walArchive, "\(layout.root) holds backups of the cluster with system identifier \(config.systemIdentifier), but the server is cluster \(systemIdentifier)",
                              hint: "use another repository for this cluster")
        }
    }

    public func connectionParameters(override: ConnectionParameters?) throws -> ConnectionParameters {
        if let override, override.connectionString != nil || override.host != nil || override.port != nil || override.user != nil {
            return override
        }
        var parameters = ConnectionParameters(connectionString: config.connection)
        parameters.password = override?.password
        return parameters
    }

    /// A sortable id from the time (UTC) and the level: 20261129-141530F. Unique in the repository.
    public func newBackupID(level: BackupRecord.Level, now: Date = Date()) throws -> String {
        let stamp = Self.compactTimestamp(now)
        let letter = switch level { case .full: "F"; case .differential: "D"; case .incremental: "I" }
        // Ids sort in the order the jobs began: a new one sorts after every one there is.
        let newest = ((try? directoryEntries(layout.backupsDirectory)) ?? [])
            .map { $0.hasPrefix(RepositoryLayout.partialPrefix) ? String($0.dropFirst(RepositoryLayout.partialPrefix.count)) : $0 }.max() ?? ""
        var id = stamp + letter
        var counter = 1
        while id <= newest || access(layout.backupDirectory(id), F_OK) == 0 || access(layout.partialDirectory(id), F_OK) == 0 {
            counter += 1
            id = stamp + "_\(counter)" + letter
        }
        return id
    }

    /// Leftovers of full or differential jobs that died (the caller holds the backup lock, so
    /// none of them is running). An incremental's partial directory is only ever empty.
    public func removeStalePartials() throws {
        for name in (try? directoryEntries(layout.backupsDirectory)) ?? [] where name.hasPrefix(RepositoryLayout.partialPrefix) {
            try? FileManager.default.removeItem(atPath: layout.backupsDirectory + "/" + name)
        }
    }

    public func manifest(of record: BackupRecord) throws -> BackupManifest {
        let path = layout.backupDirectory(record.id) + "/" + RepositoryLayout.manifestName
        guard let bytes = try readWholeFile(path) else { throw PGKeepError.verification("\(path) is missing") }
        do { return try BackupManifest(bytes: bytes) } catch { throw PGKeepError.verification("\(path): \(error)") }
    }

    func fileSize(_ path: String) throws -> Int {
        var info = stat()
        guard stat(path, &info) == 0 else { return 0 }
        return Int(info.st_size)
    }

    /// Writes the record, makes everything durable, and renames the partial directory into place:
    /// the one step that makes a backup part of the repository.
    public func commit(_ record: BackupRecord, from partial: String, sync: Bool) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try Durability.writeFileAtomically(Array(try encoder.encode(record)) + [0x0A], named: RepositoryLayout.recordName, in: partial, sync: false)
        if sync { try Durability.syncTree(partial, method: .fsync) }
        let name = String(partial.dropFirst(layout.backupsDirectory.count + 1))
        try Durability.durableRename(in: layout.backupsDirectory, from: name, to: record.id, sync: sync)
    }

    /// The end of the newest complete segment in the WAL archive; nil when it is empty.
    public func archiveEnd(segmentSize: WALSegmentSize) throws -> LSN? {
        guard access(layout.walDirectory, F_OK) == 0 else { return nil }
        let segments = try WALArchiveDirectory(path: layout.walDirectory).completeSegments(segmentSize: segmentSize)
        guard let last = segments.last, case .segment(_, let number, _, _)? = WALFileName(last, segmentSize: segmentSize) else { return nil }
        return LSN((number + 1) * segmentSize.bytes)
    }

    /// pg_switch_wal() on an ordinary connection: where the switched segment ends.
    public static func switchWAL(_ parameters: ConnectionParameters) throws -> LSN {
        let connection = try ReplicationConnection(parameters, mode: .sql)
        do {
            let rows = try connection.query("SELECT pg_switch_wal()")
            guard let text = rows.first?.first ?? nil, let lsn = LSN(text) else {
                throw PGKeepError.protocolViolation("pg_switch_wal() returned no position")
            }
            return lsn
        } catch ConnectionError.server(let error) where error.sqlState == "42501" {
            throw PGKeepError(.permission, "the role \(connection.user) may not force a WAL segment switch: \(error.message)",
                              hint: "GRANT EXECUTE ON FUNCTION pg_catalog.pg_switch_wal() TO \(connection.user);", server: error)
        }
    }

    /// `2026-11-29T20:03:22Z`: the catalog's times, UTC, RFC 3339.
    public static func timestamp(_ date: Date) -> String { Date.ISO8601FormatStyle().format(date) }
    /// A consistency time to the millisecond, rounded up: a restore to a time just before it must
    /// not pick a backup that was not yet consistent then (whole seconds would hide 0.999 s).
    public static func timestampRoundedUp(_ date: Date) -> String {
        Date.ISO8601FormatStyle(includingFractionalSeconds: true)
            .format(Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded(.up) / 1000))
    }
    public static func date(_ text: String) -> Date? {
        if let date = try? Date.ISO8601FormatStyle().parse(text) { return date }
        return try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)
    }

    static func compactTimestamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))-\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))"
    }
}

/// An exclusive flock on a file, released by the kernel when the process dies (a kill -9 leaves
/// no stale lock). The file says who holds it.
final class FileLock {
    private let descriptor: FileDescriptor

    private init(_ descriptor: FileDescriptor) { self.descriptor = descriptor }

    static func acquire(_ path: String, describing holder: String, busy: (String) -> PGKeepError) throws -> FileLock {
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FileSystemError("open lock file", path) }
        let file = FileDescriptor(raw: fd, path: path)
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            guard errno == EWOULDBLOCK else { throw FileSystemError("lock", path) }
            var buffer = [UInt8](repeating: 0, count: 256)
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
            let text = String(decoding: buffer.prefix(max(0, count)), as: UTF8.self).trimmed
            throw busy(text)
        }
        _ = ftruncate(fd, 0)
        try Array((holder + "\n").utf8).withUnsafeBytes { try file.writeAll($0, at: 0) }
        return FileLock(file)
    }
}
