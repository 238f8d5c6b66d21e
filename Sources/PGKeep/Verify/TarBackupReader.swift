#if canImport(Glibc)
import Glibc
#endif
import ArchiveStream
import FoundationEssentials
import Codecs
import Manifest
import Sinks

/// Reading a tar-format backup's archives without unpacking them: each file member's size and
/// checksum (with the algorithm the manifest names for it), by its path in the backup.
enum TarBackupReader {
    /// The archives of a tar backup, by role.
    struct Archives {
        var base: String
        var tablespaces: [(oid: String, file: String)]
        var wal: String?

        init?(in directory: String) {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
            func stem(_ name: String) -> String? {
                guard let range = name.firstRange(of: ".tar") else { return nil }
                let rest = name[range.upperBound...]
                guard rest.isEmpty || CompressionSpec.Algorithm.allCases.contains(where: { rest == $0.fileSuffix }) else { return nil }
                return String(name[..<range.lowerBound])
            }
            guard let base = names.first(where: { stem($0) == "base" }) else { return nil }
            self.base = base
            wal = names.first { stem($0) == "pg_wal" }
            tablespaces = names.compactMap { name in
                guard let oid = stem(name), !oid.isEmpty, oid.allSatisfy(\.isNumber) else { return nil }
                return (oid, name)
            }.sorted { $0.oid < $1.oid }
        }
    }

    /// Streams `archive` (decompressing by its suffix) into `consumer`.
    static func stream(_ archive: String, into consumer: TarMemberConsumer) throws {
        let parser = TarParser(next: consumer)
        let first: ByteStage = try CompressionSpec.Algorithm.fromSuffix(of: archive).map { try Codecs.decompressor($0, next: parser) } ?? parser
        try forEachChunk(ofFileAt: archive) { try first.consume($0) }
        try first.finish()
    }

    /// Extracts `archive` into an existing directory (no symbolic links accepted).
    static func extract(_ archive: String, into directory: String) throws {
        let extractor = try DirectoryExtractor(root: directory) { path, _ in
            throw PGKeepError.unsafeArchive("\(archive) has a symbolic link \(path); a tar-format backup has none")
        }
        try stream(archive, into: extractor)
    }
}

/// Checksums each file member as it streams past; nothing is written.
final class ChecksummingMemberConsumer: TarMemberConsumer {
    struct Seen { var size: UInt64; var checksum: String? }

    private let prefix: String
    private let algorithmFor: (String) -> ChecksumAlgorithm
    private var current: (path: String, summer: Checksummer, size: UInt64)?
    private(set) var files: [String: Seen] = [:]
    /// The first bytes of global/pg_control (its system identifier), when the archive has it.
    private(set) var controlFilePrefix: [UInt8]?
    private var capturingControlFile = false

    init(prefix: String, algorithmFor: @escaping (String) -> ChecksumAlgorithm) {
        self.prefix = prefix
        self.algorithmFor = algorithmFor
    }

    func beginMember(_ member: TarMember, rawHeader: UnsafeRawBufferPointer?) throws {
        guard case .file = member.kind else { current = nil; return }
        let path = prefix + member.path.description
        capturingControlFile = path == "global/pg_control"
        if capturingControlFile { controlFilePrefix = [] }
        current = (path, Checksummer(algorithmFor(path)), member.size)
    }

    func memberContents(_ bytes: UnsafeRawBufferPointer) throws {
        current?.summer.update(bytes)
        if capturingControlFile, let have = controlFilePrefix?.count, have < 8 { controlFilePrefix!.append(contentsOf: bytes.prefix(8 - have)) }
    }

    func endMember() throws {
        guard let current else { return }
        files[current.path] = Seen(size: current.size, checksum: current.summer.algorithm == .none ? nil : current.summer.finish())
        self.current = nil
    }

    func endArchive() throws {}
}
