import PGWire

/// What a job of the requested level does, given the repository and the server: pure, so the
/// rules read — and are tested — as a table.
///
/// - full: a base backup.
/// - differential: against the newest full. On 17+ with summarize_wal on: the server's
///   incremental backup (UPLOAD_MANIFEST, BASE_BACKUP INCREMENTAL). Otherwise a base backup
///   whose files unchanged since the full (same size and checksum) are not stored. With no
///   usable full it becomes a full, and says why.
/// - incremental: no data files; the WAL since the previous job. With no full to start a restore
///   from, a full instead.
public struct LevelPlan: Equatable, Sendable {
    public var level: BackupRecord.Level
    public var method: BackupRecord.Method
    public var parent: String?
    /// Why the job is not what was asked for (or how a differential had to find changes).
    public var fallbackReason: String?

    public struct Server: Equatable, Sendable {
        public var version: ServerVersion
        public var systemIdentifier: String
        public var timeline: TimelineID
        public var summarizeWAL: Bool
        public init(version: ServerVersion, systemIdentifier: String, timeline: TimelineID, summarizeWAL: Bool) {
            self.version = version
            self.systemIdentifier = systemIdentifier
            self.timeline = timeline
            self.summarizeWAL = summarizeWAL
        }
    }

    public static func decide(requested: BackupRecord.Level, newestFull: BackupRecord?, server: Server) -> LevelPlan {
        let full = LevelPlan(level: .full, method: .base, parent: nil, fallbackReason: nil)
        if requested == .full { return full }
        guard let base = newestFull else {
            return full.because("the repository has no full backup to start from")
        }
        guard base.systemIdentifier == server.systemIdentifier else {
            return full.because("the newest full backup (\(base.id)) is of cluster \(base.systemIdentifier), the server is \(server.systemIdentifier)")
        }
        guard base.timeline == server.timeline.rawValue else {
            return full.because("the server is on timeline \(server.timeline), the newest full backup (\(base.id)) on timeline \(base.timeline)")
        }
        if requested == .incremental {
            return LevelPlan(level: .incremental, method: .wal, parent: nil, fallbackReason: nil)
        }
        if server.version.supportsIncremental && server.summarizeWAL {
            return LevelPlan(level: .differential, method: .incremental, parent: base.id, fallbackReason: nil)
        }
        let why = server.version.supportsIncremental
            ? "summarize_wal is off: changed files found by comparing each with the full's manifest instead of an incremental BASE_BACKUP"
            : nil
        return LevelPlan(level: .differential, method: .file, parent: base.id, fallbackReason: why)
    }

    func because(_ reason: String) -> LevelPlan {
        var plan = self
        plan.fallbackReason = reason
        return plan
    }
}
