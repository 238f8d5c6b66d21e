#if canImport(Glibc)
import Glibc
#endif
import ArchiveStream
import Sinks

/// A file on disk that may be compressed (by its suffix's algorithm), read without holding it in
/// memory.
public struct StoredFile: Sendable, Equatable {
    public var path: String
    public var compression: CompressionSpec.Algorithm?

    public init(path: String, compression: CompressionSpec.Algorithm?) {
        self.path = path
        self.compression = compression
    }

    /// Streams the decompressed bytes to `body` in chunks.
    public func stream(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let compression else {
            try forEachChunk(ofFileAt: path, body)
            return
        }
        try withoutActuallyEscaping(body) { body in
            let decompressor = try Codecs.decompressor(compression, next: ClosureStage(body))
            try forEachChunk(ofFileAt: path) { try decompressor.consume($0) }
            try decompressor.finish()
        }
    }

    /// Opens it for reading at any offset: a plain file as it is; a compressed one decompressed,
    /// streaming, into a temporary file with no name (it goes when the reader does).
    public func openForReading() throws -> WindowedFileReader {
        if compression == nil {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw FileSystemError("open", path) }
            return try WindowedFileReader(FileDescriptor(raw: fd, path: path))
        }
        let directory = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var fd = open(directory, O_RDWR | O_CLOEXEC | O_TMPFILE_FLAG, 0o600)
        if fd < 0 {
            var template = Array((directory + "/pgkeep-XXXXXX").utf8CString)
            fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard fd >= 0 else { throw FileSystemError("create a temporary file in", directory) }
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        }
        let copy = FileDescriptor(raw: fd, path: path + " (decompressed)")
        try stream { try copy.writeAll($0) }
        return try WindowedFileReader(copy)
    }
}

/// O_TMPFILE | O_DIRECTORY, as Linux defines it (Glibc's Swift module does not export it).
private let O_TMPFILE_FLAG: Int32 = 0o20000000 | O_DIRECTORY

/// Reads a file through a fixed window (`windowSize` bytes), so memory stays the same whatever
/// the file's size: segments of 1 GiB, relation files of 1 GiB.
public final class WindowedFileReader {
    public let size: UInt64
    private let file: FileDescriptor
    private let window: UnsafeMutableRawBufferPointer
    private var windowStart: UInt64 = 0
    private var windowCount = 0

    public static let windowSize = 256 << 10

    init(_ file: FileDescriptor) throws {
        self.file = file
        var info = stat()
        guard fstat(file.raw, &info) == 0 else { throw FileSystemError("stat", file.path) }
        size = UInt64(info.st_size)
        window = .allocate(byteCount: Self.windowSize, alignment: 64)
    }

    deinit { window.deallocate() }

    /// `count` bytes at `offset`, copied out (headers: small).
    public func bytes(at offset: UInt64, count: Int) throws -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(min(count, Self.windowSize))
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
        guard offset < size else { throw FileSystemError("read past the end of", file.path, errno: EIO) }
        var count = 0
        while count == 0 {
            let result = pread(file.raw, window.baseAddress, window.count, off_t(offset))
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else { throw FileSystemError("read", file.path, errno: result < 0 ? errno : EIO) }
            count = result
        }
        windowStart = offset
        windowCount = count
    }
}

/// A stage that hands each chunk to a closure.
public final class ClosureStage: ByteStage {
    private let body: (UnsafeRawBufferPointer) throws -> Void
    public init(_ body: @escaping (UnsafeRawBufferPointer) throws -> Void) { self.body = body }
    public func consume(_ bytes: UnsafeRawBufferPointer) throws { try body(bytes) }
    public func finish() throws {}
}
