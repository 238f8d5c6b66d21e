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
        guard let algorithm = found.compression else {
            try forEachChunk(ofFileAt: found.path, body)
            return
        }
        try withoutActuallyEscaping(body) { body in
            let sink = ClosureStage(body)
            let decompressor = try Codecs.decompressor(algorithm, next: sink)
            try forEachChunk(ofFileAt: found.path) { try decompressor.consume($0) }
            try decompressor.finish()
        }
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

/// Reads one segment forward through a fixed window (`windowSize` bytes), so memory stays the
/// same for 16 MiB and 1 GiB segments. A plain file is read where it lies (pread); a compressed
/// one is first decompressed, streaming, into an unnamed temporary file, then read the same way.
public final class WALSegmentReader {
    public let found: WALSegmentSource.Found
    /// Bytes in the segment (decompressed).
    public let size: UInt64
    private let file: FileDescriptor
    private let window: UnsafeMutableRawBufferPointer
    private var windowStart: UInt64 = 0
    private var windowCount = 0

    static let windowSize = 256 << 10

    init(_ found: WALSegmentSource.Found) throws {
        self.found = found
        if found.compression == nil {
            let fd = Glibc.open(found.path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw FileSystemError("open", found.path) }
            file = FileDescriptor(raw: fd, path: found.path)
        } else {
            file = try Self.decompressedCopy(of: found)
        }
        var info = stat()
        guard fstat(file.raw, &info) == 0 else { throw FileSystemError("stat", found.path) }
        size = UInt64(info.st_size)
        window = .allocate(byteCount: Self.windowSize, alignment: 64)
    }

    deinit { window.deallocate() }

    /// `count` (≤ the window) bytes at `offset`, copied out (page and record headers: small).
    public func bytes(at offset: UInt64, count: Int) throws -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(count)
        try read(at: offset, count: count) { out.append(contentsOf: $0) }
        return out
    }

    /// Hands the bytes [offset, offset + count) to `body` as borrowed slices of the window.
    public func read(at offset: UInt64, count: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var position = offset, remaining = count
        while remaining > 0 {
            if position < windowStart || position >= windowStart + UInt64(windowCount) { try fill(at: position) }
            let inWindow = Int(position - windowStart)
            let take = min(remaining, windowCount - inWindow)
            try body(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(window)[inWindow..<inWindow + take]))
            position += UInt64(take)
            remaining -= take
        }
    }

    private func fill(at offset: UInt64) throws {
        guard offset < size else { throw FileSystemError("read past the end of", found.path, errno: EIO) }
        var count = 0
        while count == 0 {
            let result = pread(file.raw, window.baseAddress, window.count, off_t(offset))
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else { throw FileSystemError("read", found.path, errno: result < 0 ? errno : EIO) }
            count = result
        }
        windowStart = offset
        windowCount = count
    }

    /// A compressed segment decompressed into a temporary file that has no name (it goes when
    /// the reader does).
    private static func decompressedCopy(of found: WALSegmentSource.Found) throws -> FileDescriptor {
        let directory = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var fd = Glibc.open(directory, O_RDWR | O_CLOEXEC | O_TMPFILE_FLAG, 0o600)
        if fd < 0 {
            var template = Array((directory + "/pgkeep-wal-XXXXXX").utf8CString)
            fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard fd >= 0 else { throw FileSystemError("create a temporary file in", directory) }
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        }
        let copy = FileDescriptor(raw: fd, path: found.path + " (decompressed)")
        var buffer = WriteOnlyBuffer(file: copy)
        try WALSegmentSource.stream(found) { try buffer.write($0) }
        return copy
    }
}

/// O_TMPFILE | O_DIRECTORY, as Linux defines it (Glibc's Swift module does not export it).
private let O_TMPFILE_FLAG: Int32 = 0o20000000 | O_DIRECTORY

private struct WriteOnlyBuffer {
    let file: FileDescriptor
    mutating func write(_ bytes: UnsafeRawBufferPointer) throws { try file.writeAll(bytes) }
}

/// A stage that hands each chunk to a closure.
final class ClosureStage: ByteStage {
    private let body: (UnsafeRawBufferPointer) throws -> Void
    init(_ body: @escaping (UnsafeRawBufferPointer) throws -> Void) { self.body = body }
    func consume(_ bytes: UnsafeRawBufferPointer) throws { try body(bytes) }
    func finish() throws {}
}
