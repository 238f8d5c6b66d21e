/// What a finished backup reports (`--json` prints it as is).
public struct BackupSummary: Codable, Sendable, Equatable {
    public var directory: String
    public var format: String
    public var serverVersion: String
    public var systemIdentifier: String
    public var startLSN: String
    public var endLSN: String
    public var timeline: UInt32
    public var walMethod: String
    public var walSegments: Int
    public var compression: String?
    public var tablespaces: [String]
    public var files: Int
    /// Archive bytes received from the server (before client-side compression).
    public var bytesReceived: UInt64
    /// Bytes of backup files written (after compression; WAL not included).
    public var bytesWritten: UInt64
    public var seconds: Double
    public var warnings: [String]

    enum CodingKeys: String, CodingKey {
        case directory, format, timeline, compression, tablespaces, files, seconds, warnings
        case serverVersion = "server_version", systemIdentifier = "system_identifier"
        case startLSN = "start_lsn", endLSN = "end_lsn", walMethod = "wal_method", walSegments = "wal_segments"
        case bytesReceived = "bytes_received", bytesWritten = "bytes_written"
    }
}
