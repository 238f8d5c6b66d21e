import PGWire

/// A file name in a WAL archive: a segment (`TTTTTTTTXXXXXXXXYYYYYYYY`), possibly still being
/// filled (`.partial`) or compressed (`.gz`, `.lz4`, `.zst`), or a timeline history file
/// (`TTTTTTTT.history`). Anything else is not WAL and is ignored by the archive scan.
public enum WALFileName: Hashable, Sendable {
    case segment(timeline: TimelineID, segment: UInt64, partial: Bool, compression: String?)
    case history(TimelineID)

    /// Suffixes of compressed segments, as pg_receivewal writes them.
    public static let compressedSuffixes = ["gz", "lz4", "zst"]

    /// Parses `name` for segments of `segmentSize` (the segment number is split across two hex
    /// fields at a boundary that depends on the size).
    public init?(_ name: String, segmentSize: WALSegmentSize) {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard let stem = parts.first, parts.count <= 3, stem.utf8.allSatisfy(Self.isUpperHex) else { return nil }
        if stem.utf8.count == 8, parts.count == 2, parts[1] == "history" {
            guard let timeline = UInt32(stem, radix: 16), timeline > 0 else { return nil }
            self = .history(TimelineID(timeline))
            return
        }
        guard stem.utf8.count == 24,
              let timeline = UInt32(stem.prefix(8), radix: 16), timeline > 0,
              let high = UInt64(stem.dropFirst(8).prefix(8), radix: 16),
              let low = UInt64(stem.suffix(8), radix: 16)
        else { return nil }
        let perId = 0x1_0000_0000 / segmentSize.bytes
        guard low < perId else { return nil }
        var partial = false, compression: String?
        for suffix in parts.dropFirst() {
            if suffix == "partial", !partial, parts.last == suffix { partial = true }
            else if Self.compressedSuffixes.contains(String(suffix)), compression == nil, !partial { compression = String(suffix) }
            else { return nil }
        }
        self = .segment(timeline: TimelineID(timeline), segment: high * perId + low, partial: partial, compression: compression)
    }

    public static func historyFileName(_ timeline: TimelineID) -> String {
        let digits = String(timeline.rawValue, radix: 16, uppercase: true)
        return String(repeating: "0", count: 8 - digits.count) + digits + ".history"
    }

    private static func isUpperHex(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46)
    }
}
