/// WAL segment arithmetic for one wal_segment_size (a power of two from 1 MiB to 1 GiB, read
/// from the server: never assume 16 MiB).
public struct WALSegmentSize: Hashable, Sendable, CustomStringConvertible {
    public let bytes: UInt64

    public init?(bytes: UInt64) {
        guard bytes >= 1 << 20, bytes <= 1 << 30, bytes & (bytes - 1) == 0 else { return nil }
        self.bytes = bytes
    }

    /// Parses SHOW wal_segment_size output ("16MB", "1GB", "64MB").
    public init?(setting: String) {
        let units: [(String, UInt64)] = [("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10), ("B", 1)]
        guard let (suffix, factor) = units.first(where: { setting.hasSuffix($0.0) }),
              let value = UInt64(setting.dropLast(suffix.count)) else { return nil }
        self.init(bytes: value * factor)
    }

    public var description: String { "\(bytes >> 20)MB" }

    public func segmentNumber(of lsn: LSN) -> UInt64 { lsn.rawValue / bytes }
    public func offset(of lsn: LSN) -> UInt64 { lsn.rawValue % bytes }
    public func segmentStart(of lsn: LSN) -> LSN { LSN(lsn.rawValue - lsn.rawValue % bytes) }

    /// The file name: timeline, then the segment number split as PostgreSQL's XLogFileName does.
    public func fileName(segment: UInt64, timeline: TimelineID) -> String {
        let perId = 0x1_0000_0000 / bytes
        return hex8(UInt64(timeline.rawValue)) + hex8(segment / perId) + hex8(segment % perId)
    }

    private func hex8(_ value: UInt64) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }
}
