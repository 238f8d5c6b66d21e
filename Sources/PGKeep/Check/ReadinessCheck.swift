#if canImport(Glibc)
import Glibc
#endif
import PGConnection
import PGWire

/// Gathers `Readiness`'s facts: an ordinary connection (settings, role, slots), a replication
/// connection (pg_hba.conf), and the archive directory (a file really written and removed).
public enum ReadinessCheck {
    public struct Configuration: Sendable {
        public var connection: ConnectionParameters
        public var slot: String?
        public var archiveDirectory: String?
        public var repository = false
        public init(connection: ConnectionParameters) { self.connection = connection }
    }

    public static func gather(_ configuration: Configuration) -> ReadinessFacts {
        var facts = ReadinessFacts()
        facts.slot = configuration.slot
        facts.archiveDirectory = configuration.archiveDirectory
        facts.repository = configuration.repository
        if let directory = configuration.archiveDirectory { checkDirectory(directory, into: &facts) }
        let server: ReplicationConnection
        do {
            server = try ReplicationConnection(configuration.connection, mode: .sql)
        } catch {
            facts.sqlConnectionError = PGKeepError.mapping(error).message
            return facts
        }
        facts.serverVersion = server.serverVersion
        facts.user = server.user
        do {
            func value(_ sql: String) throws -> String { (try server.query(sql).first?.first ?? nil) ?? "" }
            facts.hasReplicationRole = try value("SELECT rolreplication FROM pg_roles WHERE rolname = current_user") == "t"
            facts.isSuperuser = try value("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") == "t"
            facts.walLevel = try server.show("wal_level")
            facts.maxWALSenders = Int(try server.show("max_wal_senders")) ?? 0
            facts.walSendersInUse = Int(try value("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'")) ?? 0
            facts.maxReplicationSlots = Int(try server.show("max_replication_slots")) ?? 0
            facts.slotsInUse = Int(try value("SELECT count(*) FROM pg_replication_slots")) ?? 0
            if server.serverVersion.supportsIncremental { facts.summarizeWAL = try server.show("summarize_wal") == "on" }
            facts.canSwitchWAL = try value("SELECT has_function_privilege('pg_catalog.pg_switch_wal()', 'EXECUTE')") == "t"
            if let slot = configuration.slot {
                let rows = try server.query("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, wal_status FROM pg_replication_slots WHERE slot_name = \(quoteLiteral(slot))")
                if let row = rows.first {
                    facts.slotExists = true
                    facts.slotRetainedBytes = row[0].flatMap { UInt64($0) }
                    facts.slotWALStatus = row[1]
                }
            }
        } catch {
            facts.sqlConnectionError = PGKeepError.mapping(error).message
            return facts
        }
        do {
            let replication = try ReplicationConnection(configuration.connection, mode: .physicalReplication)
            _ = try replication.identifySystem()
        } catch {
            let mapped = PGKeepError.mapping(error)
            facts.replicationConnectionError = mapped.message
            facts.replicationConnectionSQLState = mapped.sqlState
        }
        return facts
    }

    /// Writable for real (root passes every permission check; a read-only mount does not), and its free space.
    static func checkDirectory(_ directory: String, into facts: inout ReadinessFacts) {
        let probe = directory + "/.pgkeep-check-\(getpid())"
        let descriptor = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        if descriptor < 0 {
            facts.archiveError = String(cString: strerror(errno))
        } else {
            close(descriptor)
            unlink(probe)
            facts.archiveWritable = true
        }
        var info = statvfs()
        if statvfs(directory, &info) == 0 { facts.archiveFreeBytes = UInt64(info.f_bavail) * UInt64(info.f_frsize) }
    }
}
