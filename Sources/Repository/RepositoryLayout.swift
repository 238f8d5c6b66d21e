/// Where things live in a repository directory.
///
///     REPO/pgkeep.repo                   the cluster it holds (JSON), written by `repo init`
///     REPO/backups/<id>/backup.json      one backup's record; the directory's existence commits it
///     REPO/backups/<id>/backup_manifest  the server's manifest
///     REPO/backups/<id>/data/<path>      the data directory's files, each compressed on its own
///     REPO/backups/<id>/tablespaces/<oid>/<path>
///     REPO/backups/.partial-<id>/        a backup being taken (removed if the job dies)
///     REPO/wal/                          the WAL archive (receive-wal's layout and lock)
///     REPO/backup.lock                   held by the one full or differential job running
public struct RepositoryLayout: Sendable, Equatable {
    public let root: String

    public init(root: String) {
        var root = root
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        self.root = root
    }

    public var configFile: String { root + "/pgkeep.repo" }
    public var backupsDirectory: String { root + "/backups" }
    public var walDirectory: String { root + "/wal" }
    public var backupLock: String { root + "/backup.lock" }

    public func backupDirectory(_ id: String) -> String { backupsDirectory + "/" + id }
    public func partialDirectory(_ id: String) -> String { backupsDirectory + "/" + Self.partialPrefix + id }
    public static let partialPrefix = ".partial-"
    public static let recordName = "backup.json"
    public static let manifestName = "backup_manifest"
    /// A relation file of a file-comparison differential stored as its changed pages.
    public static let deltaSuffix = ".delta"

    /// A file's place in a backup: "base/5/1259" → data/base/5/1259; "pg_tblspc/16390/PG_17_…/x"
    /// → tablespaces/16390/PG_17_…/x.
    public static func storedPath(forManifestPath path: String) -> String {
        let parts = path.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        if parts.count == 3, parts[0] == "pg_tblspc", UInt32(parts[1]) != nil {
            return "tablespaces/\(parts[1])/\(parts[2])"
        }
        return "data/" + path
    }
}
