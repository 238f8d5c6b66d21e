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
            if let bytes = try readWholeFile(plain) { return (bytes, plain) }
            for algorithm in CompressionSpec.Algorithm.allCases {
                let path = plain + algorithm.fileSuffix
                guard let compressed = try readWholeFile(path) else { continue }
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
            guard let names = try? directoryEntries(directory) else { continue }
            for name in names.sorted() {
                let stem = String(name.prefix(24))
                guard stem.count == 24, stem.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x46) }),
                      name == stem || CompressionSpec.Algorithm.allCases.contains(where: { name == stem + $0.fileSuffix }),
                      let (bytes, _) = try segment(named: stem), bytes.count >= 40 else { continue }
                // After the 20-byte short header, padded to 24 for xlp_sysid (8 bytes), comes xlp_seg_size.
                let size = WALRecordChecker.uint32(bytes, 32)
                if let segmentSize = WALSegmentSize(bytes: UInt64(size)) { return segmentSize }
            }
        }
        return nil
    }
}

/// Collects a decompressed segment in memory (segments are bounded: at most 1 GiB, usually 16 MiB).
final class CollectingSink: ByteStage {
    private(set) var bytes: [UInt8] = []
    func consume(_ chunk: UnsafeRawBufferPointer) throws { bytes.append(contentsOf: chunk) }
    func finish() throws {}
}
