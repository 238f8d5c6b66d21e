/// 'r': the client's report of how far it has written, flushed (made durable) and applied WAL.
/// Flush must only ever name WAL that is fsynced: the server may recycle WAL up to it.
public struct StandbyStatusUpdate: Hashable, Sendable {
    public var written: LSN
    public var flushed: LSN
    public var applied: LSN
    /// Microseconds since 2000-01-01 00:00 UTC (PostgreSQL's epoch).
    public var clock: Int64
    public var replyRequested: Bool

    public init(written: LSN, flushed: LSN, applied: LSN, clock: Int64, replyRequested: Bool = false) {
        self.written = written
        self.flushed = flushed
        self.applied = applied
        self.clock = clock
        self.replyRequested = replyRequested
    }

    /// Seconds between the Unix epoch and PostgreSQL's.
    public static let postgresEpochOffset: Int64 = 946_684_800

    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = [UInt8(ascii: "r")]
        bytes.reserveCapacity(34)
        bytes.appendInteger(written.rawValue)
        bytes.appendInteger(flushed.rawValue)
        bytes.appendInteger(applied.rawValue)
        bytes.appendInteger(clock)
        bytes.append(replyRequested ? 1 : 0)
        return bytes
    }
}
