import CPGKeepShims
import PGWire

/// Reads WAL from one position to another the way recovery will, and says whether it would get
/// through: every segment present, every page header right (magic, address, timeline, segment
/// size), every record whole, chained to the one before it (xl_prev) and matching its CRC-32C.
/// What pg_verifybackup asks pg_waldump to do, done here so the checks need no server binaries.
public struct WALRecordChecker {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        /// The WAL simply ends here (a segment the source does not have), as opposed to damage.
        public var isMissingSegment = false
        init(_ description: String, missing: Bool = false) {
            self.description = description
            isMissingSegment = missing
        }
    }

    /// What recovery targets can stop at, as the walk meets them.
    public enum TargetEvent: Equatable, Sendable {
        /// A commit or abort: its transaction and time (microseconds since 2000-01-01).
        case transactionEnd(xid: UInt32, time: Int64)
        /// pg_create_restore_point.
        case restorePoint(name: String)
    }

    public var onTargetEvent: ((LSN, TargetEvent) -> Void)?

    public struct Summary: Equatable, Sendable {
        public var records = 0
        public var segments = 0
    }

    static let pageSize: UInt64 = 8192
    static let shortHeaderSize: UInt64 = 24
    static let longHeaderSize: UInt64 = 40
    static let recordHeaderSize = 24
    static let firstIsContinuation: UInt16 = 0x0001
    static let longHeaderFlag: UInt16 = 0x0002

    let segmentSize: WALSegmentSize
    let source: WALSegmentSource
    private var loaded: (segment: UInt64, reader: WALSegmentReader)?
    private var magic: UInt16?
    private var timeline = TimelineID(1)
    private var summary = Summary()

    public init(segmentSize: WALSegmentSize, source: WALSegmentSource) {
        self.segmentSize = segmentSize
        self.source = source
    }

    /// Checks every record that starts in [start, end) on `timeline`.
    public mutating func check(timeline: TimelineID, from start: LSN, to end: LSN) throws -> Summary {
        self.timeline = timeline
        summary = Summary()
        var position = start.rawValue
        var previous: UInt64?
        while position < end.rawValue {
            if position % Self.pageSize == 0 {
                let header = try pageHeader(at: position)
                if header.flags & Self.firstIsContinuation != 0 && previous == nil {
                    throw Failure("WAL at \(LSN(position)) continues a record from before the start: cannot begin here")
                }
                position += header.size
            }
            let (record, next) = try readRecord(at: position)
            try checkRecord(record, at: position, previous: previous)
            if let onTargetEvent, let event = Self.targetEvent(record.prefix) { onTargetEvent(LSN(position), event) }
            summary.records += 1
            previous = position
            position = next
            if Self.isSwitch(record.prefix) {
                // The rest of the segment is unused: the next record starts the next segment.
                position = segmentSize.segmentStart(of: LSN(position - 1)).rawValue + segmentSize.bytes
            }
        }
        return summary
    }

    // MARK: Records

    /// What reading a record keeps: its first bytes (the header and, for the records recovery
    /// targets stop at, all of their small main data) and its CRC over the rest, computed as the
    /// bytes stream past. A record may be up to 1 GB long: it is never held whole.
    struct Record {
        static let keptBytes = 512
        var length: Int
        var prefix: [UInt8] = []
        var crc: UInt32 = 0xFFFF_FFFF

        mutating func append(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
            if offset < Self.keptBytes { prefix.append(contentsOf: bytes.prefix(Self.keptBytes - offset)) }
            // The CRC covers the data after the 24-byte header, then the header's first 20 bytes.
            let skip = max(0, WALRecordChecker.recordHeaderSize - offset)
            if skip < bytes.count {
                crc = pgkeep_crc32c_update(crc, bytes.baseAddress! + skip, bytes.count - skip)
            }
        }
    }

    /// The record at `start` (header kept, the rest checksummed in passing, page headers
    /// skipped) and where the next one starts.
    private mutating func readRecord(at start: UInt64) throws -> (Record, UInt64) {
        let length = try Int(readUInt32(at: start))
        guard length >= Self.recordHeaderSize, length < 1 << 30 else {
            throw Failure("invalid record length \(length) at \(LSN(start))")
        }
        var record = Record(length: length)
        var read = 0
        var position = start
        while read < length {
            if position % Self.pageSize == 0 {
                let header = try pageHeader(at: position)
                guard header.flags & Self.firstIsContinuation != 0, header.remaining == UInt32(length - read) else {
                    throw Failure("record at \(LSN(start)) is cut at \(LSN(position)): the next page does not continue it (page says \(header.remaining) bytes remain, \(length - read) expected)")
                }
                position += header.size
            }
            let pageEnd = (position / Self.pageSize + 1) * Self.pageSize
            let take = Int(min(UInt64(length - read), pageEnd - position))
            try withBytes(at: position, count: take) { bytes in
                record.append(bytes, at: read)
                read += bytes.count
            }
            position += UInt64(take)
        }
        return (record, (position + 7) & ~7)
    }

    private func checkRecord(_ record: Record, at position: UInt64, previous: UInt64?) throws {
        let previousPointer = Self.uint64(record.prefix, 8)
        if let previous, previousPointer != previous {
            throw Failure("record at \(LSN(position)) points back to \(LSN(previousPointer)), not to the previous record at \(LSN(previous))")
        }
        let crc = record.prefix.withUnsafeBytes { pgkeep_crc32c_update(record.crc, $0.baseAddress!, 20) }
        guard ~crc == Self.uint32(record.prefix, 20) else { throw Failure("record at \(LSN(position)) fails its CRC-32C check (damaged WAL)") }
    }

    /// A commit/abort or restore point record's event. Commit/abort: resource manager 1 (XACT),
    /// info 0x00 commit, 0x20 abort, 0x30/0x40 the prepared forms; restore point: resource
    /// manager 0 (XLOG), info 0x70. These carry no block references, so their main data follows
    /// the data headers directly.
    static func targetEvent(_ record: [UInt8]) -> TargetEvent? {
        let isTransactionEnd = record[17] == 1 && [0x00, 0x20, 0x30, 0x40].contains(record[16] & 0x70)
        let isRestorePoint = record[17] == 0 && record[16] & 0xF0 == 0x70
        guard isTransactionEnd || isRestorePoint, let data = mainData(record), data.count >= 8 else { return nil }
        if isTransactionEnd {
            // xl_xact_commit/abort start with xact_time; the xid is the record header's.
            return .transactionEnd(xid: uint32(record, 4), time: Int64(bitPattern: uint64(Array(data), 0)))
        }
        // xl_restore_point: rp_time, then rp_name (NUL-terminated, 64 bytes).
        let name = data.dropFirst(8).prefix { $0 != 0 }
        return .restorePoint(name: String(decoding: name, as: UTF8.self))
    }

    /// The record's main data, after its data headers (only for records without block references).
    static func mainData(_ record: [UInt8]) -> ArraySlice<UInt8>? {
        var offset = recordHeaderSize
        var mainLength = 0
        scan: while offset < record.count {
            switch record[offset] {
            case 255: // XLR_BLOCK_ID_DATA_SHORT
                guard offset + 1 < record.count else { return nil }
                mainLength = Int(record[offset + 1]); offset += 2; break scan
            case 254: // XLR_BLOCK_ID_DATA_LONG
                guard offset + 4 < record.count else { return nil }
                mainLength = Int(uint32(record, offset + 1)); offset += 5; break scan
            case 253: offset += 3 // XLR_BLOCK_ID_ORIGIN + RepOriginId
            case 252: offset += 5 // XLR_BLOCK_ID_TOPLEVEL_XID + TransactionId
            default: return nil // a block reference: not a plain commit
            }
        }
        // `record` may be only the record's first bytes: what of the main data it holds.
        guard offset <= record.count else { return nil }
        return record[offset..<min(offset + mainLength, record.count)]
    }

    /// XLOG_SWITCH: resource manager 0 (XLOG), info 0x40 in the high nibble.
    private static func isSwitch(_ record: [UInt8]) -> Bool { record[17] == 0 && record[16] & 0xF0 == 0x40 }

    // MARK: Pages

    private struct PageHeader {
        var flags: UInt16
        var remaining: UInt32
        var size: UInt64
    }

    private mutating func pageHeader(at position: UInt64) throws -> PageHeader {
        let bytes = try bytes(at: position, count: 20)
        let pageMagic = UInt16(bytes[0]) | UInt16(bytes[1]) << 8
        let flags = UInt16(bytes[2]) | UInt16(bytes[3]) << 8
        let pageTimeline = Self.uint32(bytes, 4)
        let address = Self.uint64(bytes, 8)
        let remaining = Self.uint32(bytes, 16)
        let where_ = "WAL page at \(LSN(position)) (\(segmentName(position)))"
        if let magic, magic != pageMagic { throw Failure("\(where_) has magic \(hex(pageMagic)), others \(hex(magic))") }
        magic = pageMagic
        guard address == position else {
            throw Failure("\(where_) holds the page for \(LSN(address)): the segment is stale or recycled")
        }
        guard pageTimeline <= timeline.rawValue else {
            throw Failure("\(where_) belongs to timeline \(pageTimeline), after timeline \(timeline)")
        }
        let isFirst = segmentSize.offset(of: LSN(position)) == 0
        guard (flags & Self.longHeaderFlag != 0) == isFirst else {
            throw Failure("\(where_) has \(isFirst ? "no" : "an unexpected") long header")
        }
        if isFirst {
            let long = try self.bytes(at: position + 24, count: 16)
            let segmentBytes = Self.uint32(long, 8), blockSize = Self.uint32(long, 12)
            guard UInt64(segmentBytes) == segmentSize.bytes, UInt64(blockSize) == Self.pageSize else {
                throw Failure("\(where_) says segments of \(segmentBytes) bytes and pages of \(blockSize), expected \(segmentSize.bytes) and \(Self.pageSize)")
            }
        }
        return PageHeader(flags: flags, remaining: remaining, size: isFirst ? Self.longHeaderSize : Self.shortHeaderSize)
    }

    // MARK: Bytes

    private mutating func readUInt32(at position: UInt64) throws -> UInt32 {
        Self.uint32(try bytes(at: position, count: 4), 0)
    }

    private mutating func bytes(at position: UInt64, count: Int) throws -> [UInt8] {
        var out = [UInt8]()
        try withBytes(at: position, count: count) { out.append(contentsOf: $0) }
        return out
    }

    /// Hands the `count` bytes at `position` (within one segment) to `body`, in pieces.
    private mutating func withBytes(at position: UInt64, count: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let segment = segmentSize.segmentNumber(of: LSN(position))
        if loaded?.segment != segment {
            loaded = nil
            let name = segmentSize.fileName(segment: segment, timeline: timeline)
            guard let reader = try source.open(name) else {
                throw Failure("WAL segment \(name) is missing (needed for \(LSN(position)); looked in \(source.directories.joined(separator: ", ")))",
                              missing: true)
            }
            guard reader.size == segmentSize.bytes else {
                throw Failure("WAL segment \(reader.found.path) has \(reader.size) bytes, not \(segmentSize.bytes)")
            }
            loaded = (segment, reader)
            summary.segments += 1
        }
        try loaded!.reader.read(at: segmentSize.offset(of: LSN(position)), count: count, body)
    }

    private func segmentName(_ position: UInt64) -> String {
        segmentSize.fileName(segment: segmentSize.segmentNumber(of: LSN(position)), timeline: timeline)
    }

    private func hex(_ value: UInt16) -> String { "0x" + String(value, radix: 16, uppercase: true) }

    static func uint32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }

    static func uint64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        UInt64(uint32(bytes, at)) | UInt64(uint32(bytes, at + 4)) << 32
    }
}
