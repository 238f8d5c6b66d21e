#if canImport(Glibc)
import Glibc
#endif
import ArchiveStream
import Codecs
import Sinks

/// Where to find whole WAL segments by name: a backup's pg_wal, a receive-wal archive (also
/// compressed, `.gz`/`.lz4`/`.zst`). Searched in order; a `.partial` is never used.
public struct WALSegmentSource {
    public let directories: [String]

    public init(directories: [String]) { self.directories = directories }

    /// The segment's bytes, decompressed; nil when no directory has it.
    public func segment(named name: String) throws -> (bytes: [UInt8], path: String)? {
        for directory in directories {
            let plain = directory + "/" + name
            if let bytes = try Self.readFile(plain) { return (bytes, plain) }
            for algorithm in CompressionSpec.Algorithm.allCases {
                let path = plain + algorithm.fileSuffix
                guard let compressed = try Self.readFile(path) else { continue }
                let collected = CollectingSink()
                let decompressor = try Codecs.decompressor(algorithm, next: collected)
                try compressed.withUnsafeBytes { try decompressor.consume($0) }
                try decompressor.finish()
                return (collected.bytes, path)
            }
        }
        return nil
    }

    /// The segment size, as the first page of any segment here records it (xlp_seg_size in the
    /// long page header), so no server or control-file layout is needed.
    public func segmentSize() throws -> WALSegmentSize? {
        for directory in directories {
            guard let stream = opendir(directory) else { continue }
            var names: [String] = []
            while let entry = readdir(stream) {
                names.append(withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) })
            }
            closedir(stream)
            for name in names.sorted() {
                let stem = String(name.prefix(24))
                guard stem.count == 24, stem.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x46) }),
                      name == stem || CompressionSpec.Algorithm.allCases.contains(where: { name == stem + $0.fileSuffix }),
                      let (bytes, _) = try segment(named: stem), bytes.count >= 40 else { continue }
                // After the 20-byte short header, padded to 24 for xlp_sysid (8 bytes), comes xlp_seg_size.
                let size = UInt32(bytes[32]) | UInt32(bytes[33]) << 8 | UInt32(bytes[34]) << 16 | UInt32(bytes[35]) << 24
                if let segmentSize = WALSegmentSize(bytes: UInt64(size)) { return segmentSize }
            }
        }
        return nil
    }

    public static func readFile(_ path: String) throws -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw FileSystemError("open", path)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileSystemError("stat", path) }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + offset, $0.count - offset, off_t(offset)) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw FileSystemError("read", path, errno: count == 0 ? EIO : errno) }
            offset += count
        }
        return bytes
    }
}

/// Collects a decompressed segment in memory (segments are bounded: at most 1 GiB, usually 16 MiB).
final class CollectingSink: ByteStage {
    private(set) var bytes: [UInt8] = []
    func consume(_ chunk: UnsafeRawBufferPointer) throws { bytes.append(contentsOf: chunk) }
    func finish() throws {}
}
