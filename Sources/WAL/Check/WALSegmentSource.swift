#if canImport(Glibc)
import Glibc
#endif
import ArchiveStream
import Codecs
import PGWire
import Sinks

/// Where to find whole WAL segments by name: a backup's pg_wal, a receive-wal archive (also
/// compressed, `.gz`/`.lz4`/`.zst`). Searched in order; a `.partial` is never used.
///
/// Nothing here holds a segment in memory: segments are read through `WALSegmentReader` in a
/// fixed window, whatever wal_segment_size is (up to 1 GiB).
public struct WALSegmentSource {
    public let directories: [String]

    public init(directories: [String]) { self.directories = directories }

    /// A segment file found on disk.
    public struct Found: Sendable, Equatable {
        public var path: String
        public var compression: CompressionSpec.Algorithm?
        public init(path: String, compression: CompressionSpec.Algorithm?) {
            self.path = path
            self.compression = compression
        }
    }

    /// Where the segment is; nil when no directory has it.
    public func locate(_ name: String) -> Found? {
        for directory in directories {
            let plain = directory + "/" + name
            if access(plain, F_OK) == 0 { return Found(path: plain, compression: nil) }
            for algorithm in CompressionSpec.Algorithm.allCases where access(plain + algorithm.fileSuffix, F_OK) == 0 {
                return Found(path: plain + algorithm.fileSuffix, compression: algorithm)
            }
        }
        return nil
    }

    /// Opens the segment for reading; nil when no directory has it.
    public func open(_ name: String) throws -> WALSegmentReader? {
        guard let found = locate(name) else { return nil }
        return try WALSegmentReader(found)
    }

    /// Streams the segment's bytes (decompressed) to `body` in chunks; false when it is not there.
    public func stream(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Found? {
        guard let found = locate(name) else { return nil }
        try Self.stream(found, body)
        return found
    }

    public static func stream(_ found: Found, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try StoredFile(path: found.path, compression: found.compression).stream(body)
    }

    /// The segment size, as the first page of any segment here records it (xlp_seg_size in the
    /// long page header), so no server or control-file layout is needed.
    public func segmentSize() throws -> WALSegmentSize? {
        for directory in directories {
            guard let names = try? directoryEntries(directory) else { continue }
            for name in names.sorted() {
                let stem = String(name.prefix(24))
                guard stem.count == 24, stem.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x46) }),
                      name == stem || CompressionSpec.Algorithm.allCases.contains(where: { name == stem + $0.fileSuffix }),
                      let reader = try open(stem) else { continue }
                // After the 20-byte short header, padded to 24 for xlp_sysid (8 bytes), comes xlp_seg_size.
                guard let header = try? reader.bytes(at: 0, count: 40) else { continue }
                if let segmentSize = WALSegmentSize(bytes: UInt64(WALRecordChecker.uint32(header, 32))) { return segmentSize }
            }
        }
        return nil
    }
}

/// One segment, read through a fixed window (`WindowedFileReader`), so memory stays the same for
/// 16 MiB and 1 GiB segments.
public final class WALSegmentReader {
    public let found: WALSegmentSource.Found
    private let reader: WindowedFileReader

    /// Bytes in the segment (decompressed).
    public var size: UInt64 { reader.size }

    init(_ found: WALSegmentSource.Found) throws {
        self.found = found
        reader = try StoredFile(path: found.path, compression: found.compression).openForReading()
    }

    public func bytes(at offset: UInt64, count: Int) throws -> [UInt8] { try reader.bytes(at: offset, count: count) }

    public func read(at offset: UInt64, count: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try reader.read(at: offset, count: count, body)
    }
}
