#if canImport(Glibc)
import Glibc
#endif

/// Reads a whole file in large chunks, handing each to `body` as a borrowed buffer: the one read
/// loop behind checksumming, copying, compressing and decompressing files (verify, restore,
/// the WAL archive).
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

/// A whole (small or segment-sized) file in memory; nil when it does not exist.
public func readWholeFile(_ path: String) throws -> [UInt8]? {
    var bytes: [UInt8] = []
    do {
        try forEachChunk(ofFileAt: path) { bytes.append(contentsOf: $0) }
    } catch let error as FileSystemError where error.operation == "open" && error.errno == ENOENT {
        return nil
    }
    return bytes
}

/// The names in a directory, without "." and "..", in no particular order.
public func directoryEntries(_ path: String) throws -> [String] {
    guard let stream = opendir(path) else { throw FileSystemError("read directory", path) }
    defer { closedir(stream) }
    var names: [String] = []
    while let entry = readdir(stream) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}
