import PGWire

/// One backup in a repository: `backup.json`, and what `list --json` and `backup --json` print.
public struct BackupRecord: Codable, Sendable, Equatable {
    public enum Level: String, Codable, Sendable, CaseIterable { case full, incremental, differential }
    /// How a differential found what changed: the server's incremental backup (17+, WAL
    /// summaries), or a comparison of each file with the full's manifest.
    public enum Method: String, Codable, Sendable { case base, incremental, file, wal }

    public struct Tablespace: Codable, Sendable, Equatable {
        public var oid: UInt32
        public var location: String
        public init(oid: UInt32, location: String) {
            self.oid = oid
            self.location = location
        }

        /// The user tablespaces in what BASE_BACKUP announced (the main data directory has neither
        /// oid nor location).
        public static func from(_ announced: [BackupTablespace]) -> [Tablespace] {
            announced.compactMap { tablespace in
                guard let oid = tablespace.oid, let location = tablespace.location else { return nil }
                return Tablespace(oid: oid, location: location)
            }
        }
    }

    public var id: String
    public var level: Level
    public var method: Method
    /// The full a differential depends on; nil otherwise.
    public var parent: String?
    public var startLSN: String
    public var endLSN: String
    public var timeline: UInt32
    public var startedAt: String
    public var finishedAt: String
    /// When the server reached the backup's end (the earliest a restore of it can stop), or for an
    /// incremental when its WAL was switched.
    public var consistentAt: String
    public var bytesReceived: UInt64
    public var bytesStored: UInt64
    public var walStart: String
    public var walEnd: String
    public var fallbackReason: String?
    public var serverVersion: String
    public var systemIdentifier: String
    public var files: Int = 0
    /// 14–16 differentials: files not stored because the full has them unchanged.
    public var unchanged: Int = 0
    /// Differentials: files the full had that the cluster no longer has.
    public var deleted: [String] = []
    public var tablespaces: [Tablespace] = []
    /// Directories of the data directory (and tablespaces, as pg_tblspc/<oid>/…), empty ones too.
    public var directories: [String] = []

    public init(id: String, level: Level, method: Method, parent: String?, startLSN: String, endLSN: String, timeline: UInt32,
                startedAt: String, finishedAt: String, consistentAt: String, bytesReceived: UInt64, bytesStored: UInt64,
                walStart: String, walEnd: String, fallbackReason: String?, serverVersion: String, systemIdentifier: String) {
        self.id = id
        self.level = level
        self.method = method
        self.parent = parent
        self.startLSN = startLSN
        self.endLSN = endLSN
        self.timeline = timeline
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.consistentAt = consistentAt
        self.bytesReceived = bytesReceived
        self.bytesStored = bytesStored
        self.walStart = walStart
        self.walEnd = walEnd
        self.fallbackReason = fallbackReason
        self.serverVersion = serverVersion
        self.systemIdentifier = systemIdentifier
    }

    enum CodingKeys: String, CodingKey {
        case id, level, method, parent, timeline, files, unchanged, deleted, tablespaces, directories
        case startLSN = "start_lsn", endLSN = "end_lsn", startedAt = "started_at", finishedAt = "finished_at"
        case consistentAt = "consistent_at", bytesReceived = "bytes_received", bytesStored = "bytes_stored"
        case walStart = "wal_start", walEnd = "wal_end", fallbackReason = "fallback_reason"
        case serverVersion = "server_version", systemIdentifier = "system_identifier"
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(level, forKey: .level)
        try container.encode(method, forKey: .method)
        try container.encode(parent, forKey: .parent) // null when there is none, as documented
        try container.encode(startLSN, forKey: .startLSN)
        try container.encode(endLSN, forKey: .endLSN)
        try container.encode(timeline, forKey: .timeline)
        try container.encode(startedAt, forKey: .startedAt)
        try container.encode(finishedAt, forKey: .finishedAt)
        try container.encode(consistentAt, forKey: .consistentAt)
        try container.encode(bytesReceived, forKey: .bytesReceived)
        try container.encode(bytesStored, forKey: .bytesStored)
        try container.encode(walStart, forKey: .walStart)
        try container.encode(walEnd, forKey: .walEnd)
        try container.encodeIfPresent(fallbackReason, forKey: .fallbackReason)
        try container.encode(serverVersion, forKey: .serverVersion)
        try container.encode(systemIdentifier, forKey: .systemIdentifier)
        try container.encode(files, forKey: .files)
        try container.encode(unchanged, forKey: .unchanged)
        try container.encode(deleted, forKey: .deleted)
        try container.encode(tablespaces, forKey: .tablespaces)
        try container.encode(directories, forKey: .directories)
    }

    /// Whether restoring starts from it (a full, or a differential on its full).
    public var hasData: Bool { level != .incremental }
}
