import Codecs
import PGConnection
import PGWire

/// What `pgkeep receive-wal` (and the plugin's WAL jobs) ask the archiver for.
public struct ReceiveWALConfiguration: Sendable {
    public var connection: ConnectionParameters
    /// Absolute path of the archive directory (created if missing).
    public var archiveDirectory: String
    /// Stream from this physical slot, so the server keeps WAL while the archiver is away.
    public var slot: SlotName?
    /// Compress each completed segment (client-side only; `.partial` files never are).
    public var compression: CompressionSpec?
    /// Report every write flushed (fsync first), so the archiver can be a synchronous standby.
    public var synchronous = false
    public var statusIntervalSeconds = 10
    /// Stop once WAL up to here has been received (the partial segment is kept as `.partial`).
    public var endPosition: LSN?
    /// Reconnect after the connection is lost or the server restarts (off: `--no-loop`).
    public var reconnect: ReconnectPolicy? = ReconnectPolicy()
    /// fsync segments and directories (off only for tests and benchmarks that say so).
    public var sync = true
    /// Where to start when the archive is empty, before asking the slot or the server (a
    /// repository's first job starts at its backup's start).
    public var startIfEmpty: LSN?

    public init(connection: ConnectionParameters, archiveDirectory: String) {
        self.connection = connection
        self.archiveDirectory = archiveDirectory
    }
}

/// How to retry after a lost connection: exponential backoff from `initialDelay` to `maxDelay`,
/// for at most `maxAttempts` consecutive failures (nil: for ever, as a daemon should).
public struct ReconnectPolicy: Sendable, Equatable {
    public var initialDelaySeconds: Double = 1
    public var maxDelaySeconds: Double = 30
    public var maxAttempts: Int?

    public init(initialDelaySeconds: Double = 1, maxDelaySeconds: Double = 30, maxAttempts: Int? = nil) {
        self.initialDelaySeconds = initialDelaySeconds
        self.maxDelaySeconds = maxDelaySeconds
        self.maxAttempts = maxAttempts
    }

    /// The wait before retry number `attempt` (1-based).
    public func delay(beforeAttempt attempt: Int) -> Double {
        min(maxDelaySeconds, initialDelaySeconds * Double(1 << min(attempt - 1, 20)))
    }
}
