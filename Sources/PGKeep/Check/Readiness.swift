import PGWire

/// `pgkeep check`: is this server ready for pgkeep? The facts gathered from the server and the
/// repository go in; the items, each with what to do about it, come out. Pure: no I/O.
public struct ReadinessFacts: Sendable, Equatable {
    /// nil when the ordinary connection succeeded; else why it failed.
    public var sqlConnectionError: String?
    /// nil when the replication connection succeeded; else why (with its SQLSTATE).
    public var replicationConnectionError: String?
    public var replicationConnectionSQLState: String?
    public var serverVersion: ServerVersion?
    public var user = ""
    public var hasReplicationRole = false
    public var isSuperuser = false
    public var walLevel = ""
    public var maxWALSenders = 0
    public var walSendersInUse = 0
    public var maxReplicationSlots = 0
    public var slotsInUse = 0
    public var summarizeWAL: Bool?
    public var canSwitchWAL = false
    /// The repository's (or --slot's) slot, when one is expected.
    public var slot: String?
    public var slotExists = false
    public var slotRetainedBytes: UInt64?
    public var slotWALStatus: String?
    /// The archive directory, when one is expected.
    public var archiveDirectory: String?
    public var archiveWritable = false
    public var archiveError: String?
    public var archiveFreeBytes: UInt64?
    /// A repository was named: its jobs need incrementals (pg_switch_wal) and its slot.
    public var repository = false

    public init() {}
}

public struct ReadinessItem: Sendable, Equatable, Encodable {
    public enum Status: String, Sendable, Encodable { case ok, warning, failed }
    public var name: String
    public var status: Status
    public var detail: String
    /// What to do, when the status is not ok.
    public var fix: String?
}

public enum Readiness {
    /// Ready when nothing failed (warnings are advice).
    public static func isReady(_ items: [ReadinessItem]) -> Bool { !items.contains { $0.status == .failed } }

    public static func evaluate(_ facts: ReadinessFacts) -> [ReadinessItem] {
        var items: [ReadinessItem] = []
        func add(_ name: String, _ status: ReadinessItem.Status, _ detail: String, fix: String? = nil) {
            items.append(ReadinessItem(name: name, status: status, detail: detail, fix: status == .ok ? nil : fix))
        }
        if let error = facts.sqlConnectionError {
            add("connection", .failed, "an ordinary connection failed: \(error)",
                fix: "check the connection string (host, port, user, dbname) and pg_hba.conf's line for it")
            return items
        }
        add("connection", .ok, "connected as \(facts.user)")
        if let version = facts.serverVersion {
            add("server version", version.isSupported ? .ok : .failed, "PostgreSQL \(version)",
                fix: "pgkeep needs PostgreSQL \(ServerVersion.minimumSupported.major) or later")
        }
        add("replication role", facts.hasReplicationRole || facts.isSuperuser ? .ok : .failed,
            facts.isSuperuser ? "\(facts.user) is a superuser" : facts.hasReplicationRole ? "\(facts.user) has REPLICATION" : "\(facts.user) has no REPLICATION attribute",
            fix: "ALTER ROLE \(facts.user) REPLICATION;")
        if let error = facts.replicationConnectionError {
            let hba = facts.replicationConnectionSQLState == "28000" || error.contains("pg_hba.conf")
            add("replication connection", .failed, "a replication connection failed: \(error)",
                fix: hba ? "add a line for it to pg_hba.conf, e.g. `host replication \(facts.user) <client address>/32 scram-sha-256`, then SELECT pg_reload_conf();"
                         : "see the server's log for why the replication connection was refused")
        } else {
            add("replication connection", .ok, "pg_hba.conf allows \(facts.user) to connect for replication")
        }
        let levelOK = facts.walLevel == "replica" || facts.walLevel == "logical"
        add("wal_level", levelOK ? .ok : .failed, "wal_level = \(facts.walLevel)",
            fix: "ALTER SYSTEM SET wal_level = replica; then restart the server")
        // A backup with -X stream uses two WAL senders: one for the data, one for the WAL.
        let freeSenders = facts.maxWALSenders - facts.walSendersInUse
        add("WAL senders", freeSenders >= 2 ? .ok : .failed, "\(freeSenders) of max_wal_senders = \(facts.maxWALSenders) free (a backup needs 2)",
            fix: "ALTER SYSTEM SET max_wal_senders = \(max(10, facts.walSendersInUse + 2)); then restart the server")
        let freeSlots = facts.maxReplicationSlots - facts.slotsInUse
        add("replication slots", freeSlots >= 1 ? .ok : .failed, "\(freeSlots) of max_replication_slots = \(facts.maxReplicationSlots) free (a backup takes a temporary one)",
            fix: "ALTER SYSTEM SET max_replication_slots = \(max(10, facts.slotsInUse + 1)); then restart the server, or drop a slot nobody uses")
        if let slot = facts.slot {
            if !facts.slotExists {
                add("slot \(slot)", .failed, "the slot \(slot) does not exist: WAL between jobs is not kept",
                    fix: "pgkeep receive-wal --create-slot --slot \(slot) -d … (or pgkeep repo init on a new repository)")
            } else if facts.slotWALStatus == "lost" {
                add("slot \(slot)", .failed, "the slot \(slot) has lost WAL (max_slot_wal_keep_size): the archive has a gap",
                    fix: "drop and create the slot again, then take a full backup")
            } else {
                let held = facts.slotRetainedBytes.map { "holds back \(ByteCount.describe($0)) of WAL" } ?? "holds back no WAL yet"
                add("slot \(slot)", .ok, "the slot \(slot) exists and \(held)")
            }
        }
        if let version = facts.serverVersion, version.supportsIncremental {
            let on = facts.summarizeWAL == true
            add("summarize_wal", on ? .ok : .warning,
                on ? "summarize_wal = on: differentials use the server's incremental backups" : "summarize_wal = off: differentials compare every file with the full instead of using the server's incremental backup",
                fix: "ALTER SYSTEM SET summarize_wal = on; SELECT pg_reload_conf();")
        }
        add("pg_switch_wal()", facts.canSwitchWAL ? .ok : (facts.repository ? .failed : .warning),
            facts.canSwitchWAL ? "\(facts.user) may call pg_switch_wal() (incremental jobs end with it)" : "\(facts.user) may not call pg_switch_wal(): incremental jobs need it",
            fix: "GRANT EXECUTE ON FUNCTION pg_catalog.pg_switch_wal() TO \(facts.user);")
        if let directory = facts.archiveDirectory {
            if facts.archiveWritable {
                add("archive directory", .ok, "\(directory) is writable, \(facts.archiveFreeBytes.map(ByteCount.describe) ?? "?") free")
            } else {
                add("archive directory", .failed, "\(directory) is not writable: \(facts.archiveError ?? "unknown")",
                    fix: "create it, owned by the user pgkeep runs as, on a file system mounted read-write")
            }
        }
        return items
    }
}
