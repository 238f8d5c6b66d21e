#if canImport(Glibc)
import Glibc
#endif

/// Reads a whole file in large chunks, handing each to `body` as a borrowed buffer: the one read
/// loop behind checksumming, copying and decompressing files (verify, restore).
public func forEachChunk(ofFileAt path: String, chunkSize: Int = 1 << 20,
                         _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw FileSystemError("open", path) }
    defer { close(fd) }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 64)
    defer { buffer.deallocate() }
    while true {
        let count = read(fd, buffer.baseAddress, buffer.count)
        if count < 0 && errno == EINTR { continue }
        guard count >= 0 else { throw FileSystemError("read", path) }
        if count == 0 { return }
        try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
    }
}
