import ArchiveStream
import PGWire
import PGConnection
import Sinks
import WAL

/// Why a backup failed, with what the user can do about it. The engine maps low-level errors
/// here once, so every front end (CLI, plugin) reports the same words.
public enum BackupError: Error, CustomStringConvertible, Sendable {
    case invalidConfiguration(String)
    case connection(String, hint: String?)
    case server(String, hint: String?)
    case unsupportedServer(String)
    case protocolViolation(String)
    case unsafeArchive(String)
    case storage(String)
    case walStreaming(String)
    /// The WAL archive cannot be used as asked (another cluster's, locked, missing WAL).
    case walArchive(String, hint: String?)
    /// A backup cannot be checked at all (its manifest is missing or damaged).
    case verification(String)
    case checksumFailures(count: Int, detail: String)
    case cancelled

    public var description: String {
        switch self {
        case .invalidConfiguration(let message): message
        case .connection(let message, let hint), .server(let message, let hint), .walArchive(let message, let hint):
            hint.map { "\(message)\nhint: \($0)" } ?? message
        case .unsupportedServer(let message): message
        case .protocolViolation(let message): "unexpected data from the server: \(message)"
        case .unsafeArchive(let message), .verification(let message): message
        case .storage(let message): message
        case .walStreaming(let message): "WAL streaming failed: \(message)"
        case .checksumFailures(let count, let detail):
            "the server found \(count) data page checksum failure(s) while reading the cluster; the backup holds the pages as they are on disk and was not kept\n\(detail)"
        case .cancelled: "backup cancelled"
        }
    }

    /// Exit status for the CLI: 1 for failures of the backup, 2 for usage, 3 for connection problems.
    public var exitCode: Int32 {
        switch self {
        case .invalidConfiguration: 2
        case .connection, .unsupportedServer: 3
        default: 1
        }
    }

    /// Any error from the layers below, in the user's terms: the one mapping every job's `run`
    /// ends with.
    static func mapping(_ error: any Error) -> BackupError {
        switch error {
        case let error as BackupError: error
        case let error as ConnectionError: explaining(error)
        case let error as TarError: .unsafeArchive("\(error)")
        case let error as FileSystemError: .storage("\(error)")
        case let error as WALStreamError: .walStreaming("\(error)")
        case let error as WireError: .protocolViolation("\(error)")
        default: .storage("\(error)")
        }
    }

    /// Explains a connection-level failure in the user's terms.
    static func explaining(_ error: ConnectionError, endpoint: String? = nil) -> BackupError {
        switch error {
        case .connectFailed(let message, let passwordNeeded):
            let lower = message.lowercased()
            if passwordNeeded || lower.contains("password authentication failed") || lower.contains("no password supplied") {
                return .connection("authentication failed: \(message)",
                                   hint: "check the user and password (~/.pgpass, PGPASSWORD, or -W to be asked)")
            }
            if lower.contains("no pg_hba.conf entry for replication") || (lower.contains("pg_hba.conf") && lower.contains("replication")) {
                return .connection(message, hint: "the server's pg_hba.conf needs a 'replication' line for this user and address")
            }
            if lower.contains("must be superuser or replication role") || lower.contains("permission denied to start wal sender") {
                return .connection("the role may not start a replication connection: \(message)",
                                   hint: "grant it with ALTER ROLE <name> REPLICATION (or connect as a role that has it)")
            }
            if lower.contains("exceeds max_wal_senders") || lower.contains("too many clients") || lower.contains("reserved for") {
                return .connection("no free WAL sender on the server: \(message)",
                                   hint: "raise max_wal_senders (and wal_level must be replica or logical), or wait for other replication clients to finish")
            }
            if lower.contains("connection refused") || lower.contains("no such file or directory") || lower.contains("could not translate host name")
                || lower.contains("timeout expired") || lower.contains("network is unreachable") {
                return .connection("server unreachable: \(message)", hint: "is the server running, and are host and port (-h, -p) right?")
            }
            return .connection(message, hint: nil)
        case .server(let serverError):
            return explaining(serverError)
        case .lost(let message):
            return .connection("connection lost: \(message)", hint: nil)
        case .unsupportedServer(let message):
            return .unsupportedServer(message)
        }
    }

    static func explaining(_ error: ServerError) -> BackupError {
        let message = error.description
        switch error.sqlState {
        case "55000" where error.message.contains("WAL level not sufficient"):
            return .server(message, hint: "set wal_level = replica (or logical) on the server and restart it")
        case "42501":
            return .server(message, hint: "the role needs the REPLICATION attribute")
        case "53300":
            return .server(message, hint: "raise max_wal_senders / max_replication_slots on the server")
        case "42710":
            return .server(message, hint: "choose another --slot name, or drop the existing slot")
        case "42704":
            return .server(message, hint: "create the slot first, or add --create-slot")
        case "54000":
            return .server(message, hint: "a file path in the data directory is too long for the tar format the server sends")
        default:
            return .server(message, hint: nil)
        }
    }
}
