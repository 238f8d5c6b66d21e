import Synchronization
import PGWire

/// The archiver's counters and positions, updated by the streaming thread and read by the
/// metrics endpoint; rendered in Prometheus' text format.
public final class ArchiverMetrics: Sendable {
    struct Values {
        var received = LSN.zero
        var flushed = LSN.zero
        var serverEnd = LSN.zero
        var timeline: UInt32 = 0
        var segmentsArchived = 0
        var bytesArchived: UInt64 = 0
        var reconnects = 0
        var connected = false
    }

    private let values = Mutex(Values())

    public init() {}

    func update(_ change: (inout Values) -> Void) { values.withLock { change(&$0) } }

    /// Server end of WAL minus what is durable here.
    public var lagBytes: UInt64 {
        values.withLock { $0.serverEnd > $0.flushed ? $0.serverEnd.rawValue - $0.flushed.rawValue : 0 }
    }

    public func render() -> String {
        let v = values.withLock { $0 }
        let lag = v.serverEnd > v.flushed ? v.serverEnd.rawValue - v.flushed.rawValue : 0
        let rows: [(String, String, String, String)] = [
            ("pgkeep_wal_received_lsn_bytes", "gauge", "WAL position received from the server (bytes since 0/0).", "\(v.received.rawValue)"),
            ("pgkeep_wal_flushed_lsn_bytes", "gauge", "WAL position durable in the archive and reported flushed.", "\(v.flushed.rawValue)"),
            ("pgkeep_wal_server_end_lsn_bytes", "gauge", "End of WAL on the server, as it last reported it.", "\(v.serverEnd.rawValue)"),
            ("pgkeep_wal_lag_bytes", "gauge", "Server end of WAL minus flushed position.", "\(lag)"),
            ("pgkeep_wal_timeline", "gauge", "Timeline being streamed.", "\(v.timeline)"),
            ("pgkeep_wal_segments_archived_total", "counter", "Segments completed and made durable in the archive.", "\(v.segmentsArchived)"),
            ("pgkeep_wal_archived_bytes_total", "counter", "Bytes of completed segments written to the archive (after compression).", "\(v.bytesArchived)"),
            ("pgkeep_wal_reconnects_total", "counter", "Times the archiver reconnected after losing the server.", "\(v.reconnects)"),
            ("pgkeep_wal_connected", "gauge", "1 while streaming from the server.", v.connected ? "1" : "0"),
        ]
        return rows.map { "# HELP \($0.0) \($0.2)\n# TYPE \($0.0) \($0.1)\n\($0.0) \($0.3)\n" }.joined()
    }
}
