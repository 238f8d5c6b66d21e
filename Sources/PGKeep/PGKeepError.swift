import ArchiveStream
import Codecs
import PGWire
import PGConnection
import Sinks
import WAL

/// The one error the engine throws, after postgres-nio's PSQLError: a `code` that says what kind
/// of failure this is, the words for a person, a hint, and — where they exist — the server's
/// fields (with its SQLSTATE) and libpq's state. Front ends (CLI, plugin backend) and the
/// engine's own retry logic decide by `code`, `sqlState` and `libpq` only: never by the message,
/// which is in whatever language the server or libpq speaks.
public struct PGKeepError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure. A struct, not an enum, so a new code breaks no caller's `switch`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The request itself is wrong (flags, paths, targets); nothing was tried.
        public static let usage = Code("usage")
        /// The server could not be reached, or the connection broke.
        public static let connection = Code("connection")
        /// The server refused who we are (password, pg_hba.conf, unknown role).
        public static let authentication = Code("authentication")
        /// The role may not do this (no REPLICATION, no EXECUTE, not a superuser).
        public static let permission = Code("permission")
        /// The server is not in a state to do it: settings (wal_level), no free WAL sender, a
        /// slot missing or in use, shutting down, WAL already removed.
        public static let serverState = Code("server-state")
        /// Any other error the server raised.
        public static let serverError = Code("server-error")
        public static let unsupportedServer = Code("unsupported-server")
        /// The server's answer breaks the protocol.
        public static let protocolViolation = Code("protocol")
        /// The server sent something that would write outside the target, or an impossible archive.
        public static let hostileStream = Code("hostile-stream")
        /// Our side's disk: create, write, fsync, rename, a full file system.
        public static let storage = Code("storage")
        /// The WAL archive cannot be used as asked (another cluster's, locked, a gap).
        public static let walArchive = Code("wal-archive")
        /// A backup or repository cannot be checked, or fails its checks.
        public static let verification = Code("verification")
        /// The server found data-page checksum failures while reading the cluster.
        public static let checksumFailure = Code("checksum-failure")
        /// A PostgreSQL client program (pg_dump, pg_restore, psql) failed.
        public static let toolFailed = Code("tool-failed")
        public static let cancelled = Code("cancelled")
        /// Another process holds what this needs (an archive's or a repository's lock).
        public static let busy = Code("busy")
        /// A bug or an impossibility in pgkeep itself.
        public static let internalError = Code("internal")
    }

    /// libpq's view of a failed connection attempt.
    public struct LibpqState: Sendable, Equatable {
        public var passwordNeeded: Bool
        public var passwordUsed: Bool
    }

    public var code: Code
    public var message: String
    public var hint: String?
    /// The server's ErrorResponse, when the server raised this.
    public var server: ServerError?
    /// Set for failures of a connection attempt.
    public var libpq: LibpqState?
    /// The failure happened while connecting (exit status 3, as "cannot connect").
    public var whileConnecting = false

    public init(_ code: Code, _ message: String, hint: String? = nil, server: ServerError? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
        self.server = server
    }

    public var sqlState: String? { server?.sqlState }

    public var description: String { hint.map { "\(message)\nhint: \($0)" } ?? message }

    /// Exit status for the CLI: 2 usage; 3 cannot connect (whatever refused us) or an
    /// unsupported server; 1 every other failure.
    public var exitCode: Int32 {
        if code == .usage { return 2 }
        if whileConnecting || code == .connection || code == .authentication || code == .unsupportedServer { return 3 }
        return 1
    }

    /// Whether trying again later may succeed: the network, a server restarting or shutting down,
    /// no free connection slot, a slot still held by a dead connection's walsender. Decided by
    /// code and SQLSTATE alone.
    public var isTransient: Bool {
        if code == .connection { return true }
        guard let state = sqlState else { return false }
        return state.hasPrefix("08") || ["53300", "55006", "57P01", "57P02", "57P03"].contains(state)
    }

    /// The server refused a password it asked for, or wanted one we did not have.
    public var passwordNeeded: Bool { libpq?.passwordNeeded ?? false }

    // MARK: The shapes the engine raises most

    public static func invalidConfiguration(_ message: String) -> PGKeepError { PGKeepError(.usage, message) }
    public static func connection(_ message: String, hint: String?) -> PGKeepError { PGKeepError(.connection, message, hint: hint) }
    public static func server(_ message: String, hint: String?) -> PGKeepError { PGKeepError(.serverState, message, hint: hint) }
    public static func unsupportedServer(_ message: String) -> PGKeepError { PGKeepError(.unsupportedServer, message) }
    public static func protocolViolation(_ message: String) -> PGKeepError {
        PGKeepError(.protocolViolation, "unexpected data from the server: \(message)")
    }
    public static func unsafeArchive(_ message: String) -> PGKeepError { PGKeepError(.hostileStream, message) }
    public static func storage(_ message: String) -> PGKeepError { PGKeepError(.storage, message) }
    public static func walStreaming(_ message: String) -> PGKeepError { PGKeepError(.serverState, "WAL streaming failed: \(message)") }
    public static func walArchive(_ message: String, hint: String?) -> PGKeepError { PGKeepError(.walArchive, message, hint: hint) }
    public static func verification(_ message: String) -> PGKeepError { PGKeepError(.verification, message) }
    public static let cancelled = PGKeepError(.cancelled, "cancelled")

    // MARK: Mapping what the layers below throw

    /// Any error from the layers below, in the user's terms: the one mapping every job's `run`
    /// ends with.
    public static func mapping(_ error: any Error) -> PGKeepError {
        switch error {
        case let error as PGKeepError: error
        case let error as ConnectionError: explaining(error)
        case let error as TarError: .unsafeArchive("\(error)")
        case let error as FileSystemError: .storage("\(error)")
        case let error as CodecError:
            switch error {
            case .corruptInput, .truncatedInput: PGKeepError(.hostileStream, "\(error)")
            default: PGKeepError(.internalError, "\(error)")
            }
        case let error as WALStreamError:
            // The streamer wraps what failed on its thread; keep the underlying kind.
            error.underlying.map { walStreamingFailure(mapping($0)) } ?? .walStreaming(error.description)
        case let error as WireError: .protocolViolation("\(error)")
        default: PGKeepError(.internalError, "\(error)")
        }
    }

    private static func walStreamingFailure(_ inner: PGKeepError) -> PGKeepError {
        var wrapped = inner
        wrapped.message = "WAL streaming failed: \(inner.message)"
        return wrapped
    }

    /// A connection-level failure, classified by libpq's state and the server's SQLSTATE.
    static func explaining(_ error: ConnectionError) -> PGKeepError {
        switch error {
        case .connectFailed(let failure):
            var result = connectFailure(failure)
            result.libpq = LibpqState(passwordNeeded: failure.passwordNeeded, passwordUsed: failure.passwordUsed)
            result.whileConnecting = true
            return result
        case .server(let serverError):
            return explaining(serverError)
        case .lost(let message):
            return .connection("connection lost: \(message)", hint: nil)
        case .protocolViolation(let message):
            return .protocolViolation(message)
        case .cancelled:
            return .cancelled
        }
    }

    private static func connectFailure(_ failure: ConnectFailure) -> PGKeepError {
        let message = failure.message
        if failure.passwordNeeded {
            return PGKeepError(.authentication, "authentication failed: \(message)",
                               hint: "check the user and password (~/.pgpass, PGPASSWORD, or -W to be asked)")
        }
        guard let state = failure.sqlState else {
            return .connection("server unreachable: \(message)", hint: "is the server running, and are host and port (-h, -p) right?")
        }
        let server = ServerError(severity: "FATAL", sqlState: state, message: message)
        switch state {
        case "28P01":
            return PGKeepError(.authentication, "authentication failed: \(message)",
                               hint: "check the user and password (~/.pgpass, PGPASSWORD, or -W to be asked)", server: server)
        case _ where state.hasPrefix("28"):
            return PGKeepError(.authentication, "the server refused the connection: \(message)",
                               hint: "the server's pg_hba.conf must allow this user from this address (a 'replication' line for replication connections), and the role must exist and may log in",
                               server: server)
        case "42501":
            return PGKeepError(.permission, "the role may not start a replication connection: \(message)",
                               hint: "grant it with ALTER ROLE <name> REPLICATION (or connect as a role that has it)", server: server)
        case "53300":
            return PGKeepError(.serverState, "no free connection or WAL sender on the server: \(message)",
                               hint: "raise max_wal_senders (and wal_level must be replica or logical), or wait for other replication clients to finish",
                               server: server)
        case "57P03":
            return PGKeepError(.serverState, "the server is not accepting connections now: \(message)",
                               hint: "it is starting up, shutting down or in recovery; try again shortly", server: server)
        case "3D000":
            return PGKeepError(.usage, message, hint: "the database named in the connection does not exist", server: server)
        default:
            return PGKeepError(.serverError, message, server: server)
        }
    }

    /// An ErrorResponse on an established connection, by SQLSTATE.
    static func explaining(_ error: ServerError) -> PGKeepError {
        let message = error.description
        switch error.sqlState {
        case "XX001":
            return PGKeepError(.checksumFailure, message, server: error)
        case "42501":
            return PGKeepError(.permission, message, hint: "the role lacks a privilege this needs", server: error)
        case "53300":
            return PGKeepError(.serverState, message, hint: "raise max_wal_senders / max_replication_slots on the server", server: error)
        case "42710":
            return PGKeepError(.serverState, message, hint: "choose another --slot name, or drop the existing slot", server: error)
        case "42704":
            return PGKeepError(.serverState, message, hint: "create the slot first, or add --create-slot", server: error)
        case "54000":
            return PGKeepError(.serverError, message, hint: "a file path in the data directory is too long for the tar format the server sends", server: error)
        case "57P01", "57P02", "57P03":
            return PGKeepError(.serverState, message, hint: nil, server: error)
        case _ where error.sqlStateClass == "08":
            return PGKeepError(.connection, message, server: error)
        case _ where ["53", "55", "57", "58"].contains(error.sqlStateClass):
            return PGKeepError(.serverState, message, server: error)
        default:
            return PGKeepError(.serverError, message, server: error)
        }
    }
}
