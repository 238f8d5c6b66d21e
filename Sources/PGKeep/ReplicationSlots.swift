import Logging
import PGConnection
import PGWire

/// Creating and dropping physical replication slots, as `receive-wal --create-slot/--drop-slot`
/// do (and pg_receivewal: each does its one thing, then the command exits).
public enum ReplicationSlots {
    /// Creates `slot`, reserving WAL from now on. With `ifNotExists`, an existing slot is fine.
    /// Returns false when it already existed.
    @discardableResult
    public static func create(_ slot: SlotName, connection parameters: ConnectionParameters, ifNotExists: Bool,
                              logger: Logger) throws(PGKeepError) -> Bool {
        do {
            let connection = try ReplicationConnection(parameters, mode: .physicalReplication)
            do {
                _ = try connection.run(.createPhysicalSlot(slot, temporary: false, reserveWAL: true))
            } catch .server(let error) where error.sqlState == "42710" && ifNotExists {
                logger.notice("replication slot \"\(slot)\" already exists")
                return false
            }
            logger.notice("created replication slot \"\(slot)\"")
            return true
        } catch {
            throw PGKeepError.explaining(error)
        }
    }

    public static func drop(_ slot: SlotName, connection parameters: ConnectionParameters, logger: Logger) throws(PGKeepError) {
        do {
            let connection = try ReplicationConnection(parameters, mode: .physicalReplication)
            _ = try connection.run(.dropSlot(slot, wait: false))
            logger.notice("dropped replication slot \"\(slot)\"")
        } catch {
            throw PGKeepError.explaining(error)
        }
    }
}
