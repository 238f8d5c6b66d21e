#if canImport(Glibc)
import Glibc
#endif
import ArchiveStream
import Codecs
import Manifest
import PGKeep
import PGWire
import Sinks

/// Stores a backup's members in a repository, each file on its own, compressed as the
/// repository says: data/<path>, tablespaces/<oid>/<path>. Directories and tablespace links are
/// recorded (for the restore to recreate), not stored.
///
/// For a file-comparison differential (14–16, or 17+ without WAL summaries) it compares with the
/// full as each file passes: a file whose size and checksum equal the full's manifest entry is
/// removed again once its last byte has passed (the full has it), and only counted. A relation
/// file that did change is stored as a block delta (`<path>.delta`): only the pages whose LSN is
/// at or past the full's start (changed by WAL since), or beyond the full's length — the same
/// criterion pg_probackup's DELTA mode uses; the restore merges them with the full's file and
/// checks the result against this backup's manifest.
final class RepositoryFileStore: BackupArchiveConsumer {
    struct Parent {
        /// The full's manifest entries by path.
        var files: [String: BackupManifestFile]
        /// Where the full began: a page whose LSN is older was not changed since (by WAL).
        var startLSN: LSN
        var blockSize: Int
        /// The full's directory (its block maps).
        var directory: String
    }
    typealias BackupManifestFile = BackupManifest.File

    private let root: String
    private let compression: CompressionSpec?
    private let parent: Parent?
    private let sync: Bool
    private(set) var tablespaces: [BackupRecord.Tablespace] = []
    private(set) var directories: [String] = []
    private(set) var filesStored = 0
    private(set) var filesUnchanged = 0
    private(set) var bytesStored: UInt64 = 0
    private(set) var manifest: BackupManifest?
    private(set) var manifestPaths: [String] = []

    /// A full backup records each relation file's page checksums (`BlockMap`).
    let blockSize: Int

    init(root: String, compression: CompressionSpec?, parent: Parent?, sync: Bool, blockSize: Int = 8192) {
        self.root = root
        self.blockSize = blockSize
        self.compression = compression
        self.parent = parent
        self.sync = sync
    }

    /// Files from this size up are compressed with zstd on every online processor (libzstd's
    /// workers, 1 MiB jobs: the output is the same format, read the same way); smaller ones on
    /// this thread, where starting workers would cost more than they save.
    static let parallelCompressionSize: UInt64 = 4 << 20

    func compression(forSize size: UInt64) -> CompressionSpec? {
        guard var spec = compression else { return nil }
        if spec.algorithm == .zstd, spec.workers == nil, size >= Self.parallelCompressionSize { spec.workers = ZstdCompressor.defaultWorkers }
        return spec
    }

    func tablespacesKnown(_ list: [BackupTablespace]) throws {
        tablespaces = BackupRecord.Tablespace.from(list)
    }

    func startArchive(_ tablespace: BackupTablespace) throws -> TarMemberConsumer {
        let prefix = tablespace.oid.map { "pg_tblspc/\($0)/" } ?? ""
        return MemberWriter(store: self, prefix: prefix)
    }

    func manifestReceived(_ bytes: [UInt8]) throws {
        let parsed = try BackupManifest(bytes: bytes)
        manifest = parsed
        try Durability.writeFileAtomically(bytes, named: RepositoryLayout.manifestName, in: root, sync: false)
    }

    /// The full's files this backup's manifest no longer lists.
    func deletedSinceParent() -> [String] {
        guard let parent, let manifest else { return [] }
        let now = Set(manifest.files.map(\.path))
        return parent.files.keys.filter { !now.contains($0) }.sorted()
    }

    // MARK: Members

    /// Writes one archive's members.
    final class MemberWriter: TarMemberConsumer {
        private unowned let store: RepositoryFileStore
        private let prefix: String
        private var current: (path: String, stored: String, sink: FileSink, output: ByteStage, summer: Checksummer?, size: UInt64)?
        private var delta: BlockDeltaWriter?
        private var mapper: (path: String, splitter: PageSplitter, crcs: [UInt32])?

        init(store: RepositoryFileStore, prefix: String) {
            self.store = store
            self.prefix = prefix
        }

        func beginMember(_ member: TarMember, rawHeader: UnsafeRawBufferPointer?) throws {
            let path = prefix + member.path.description
            switch member.kind {
            case .directory:
                store.directories.append(path)
            case .symlink:
                return // pg_tblspc/<oid>: recorded from the tablespace list
            case .file:
                var summer: Checksummer?
                let entry = store.parent?.files[path]
                if let entry, entry.size == member.size, entry.algorithm != .none, entry.checksum != nil {
                    summer = Checksummer(entry.algorithm)
                }
                // A relation file the full has: only its changed pages are kept.
                var deltaBase: UInt64?
                if let parent = store.parent, let entry, RelationFile.isPageDeltaCandidate(path),
                   member.size % UInt64(parent.blockSize) == 0, entry.size % UInt64(parent.blockSize) == 0 {
                    deltaBase = entry.size / UInt64(parent.blockSize)
                }
                let suffix = (deltaBase != nil ? RepositoryLayout.deltaSuffix : "") + (store.compression?.algorithm.fileSuffix ?? "")
                let stored = store.root + "/" + RepositoryLayout.storedPath(forManifestPath: path) + suffix
                try makeParents(of: stored)
                // No fsync per file on the receiving thread (a differential's ~1,000 files had
                // stalled the stream 0.4 s in them): the commit fsyncs the whole backup at once,
                // before the rename that makes it count. Writeback starts as the file is written.
                let sink = try FileSink(path: stored, syncOnFinish: false, startsWriteback: store.sync)
                let output = try store.compression(forSize: member.size).map { try Codecs.compressor($0, next: sink) } ?? sink
                if store.parent == nil, RelationFile.isPageDeltaCandidate(path) {
                    mapper = (path, PageSplitter(blockSize: store.blockSize), [])
                }
                if let deltaBase, let parent = store.parent {
                    let map = try BlockMap.read(BlockMap.path(in: parent.directory, manifestPath: path))
                    delta = BlockDeltaWriter(output: output, blockSize: parent.blockSize, since: parent.startLSN, baseBlocks: deltaBase,
                                             baseMap: map)
                    // The whole file's checksum decides "unchanged" even when its size changed not.
                    if summer == nil, let entry, entry.algorithm != .none { summer = Checksummer(entry.algorithm) }
                }
                current = (path, stored, sink, output, summer, member.size)
            }
        }

        func memberContents(_ bytes: UnsafeRawBufferPointer) throws {
            guard let current else { return }
            if let delta { try delta.consume(bytes) } else { try current.output.consume(bytes) }
            current.summer?.update(bytes)
            if var mapped = mapper.take() {
                var crcs = mapped.crcs
                mapped.crcs = []
                try mapped.splitter.consume(bytes) { crcs.append(BlockMap.crc($0)) }
                mapped.crcs = crcs
                mapper = mapped
            }
        }

        func endMember() throws {
            guard let file = current.take() else { return }
            if let delta = delta.take() { try delta.finish() }
            if let mapped = mapper.take(), !mapped.splitter.hasPartialPage {
                try BlockMap.write(mapped.crcs, to: BlockMap.path(in: store.root, manifestPath: mapped.path))
            }
            try file.output.finish()
            if let summer = file.summer, let entry = store.parent?.files[file.path], entry.size == file.size, summer.finish() == entry.checksum {
                // Unchanged since the full: the full's copy serves the restore.
                guard unlink(file.stored) == 0 else { throw FileSystemError("remove", file.stored) }
                store.filesUnchanged += 1
                return
            }
            store.filesStored += 1
            store.bytesStored += file.sink.bytesWritten
        }

        func endArchive() throws {}

        private var lastParent = ""

        /// mkdir -p of the file's directory (members arrive grouped by directory: once per directory).
        func makeParents(of path: String) throws {
            guard let slash = path.lastIndex(of: "/") else { return }
            let parent = String(path[..<slash])
            guard parent != lastParent else { return }
            try TargetDirectory.makeDirectories(parent, mode: 0o700)
            lastParent = parent
        }
    }
}

/// Relation files, as pg_combinebackup tells them: `<relfilenode>[_fork][.segno]` under base/<db>/,
/// global/, or a tablespace's database directory. The free space map is never incremental (it
/// is not properly WAL-logged).
public enum RelationFile {
    /// A main fork: every change to its pages moves their LSN. Not the visibility map, whose
    /// bits are cleared by heap records without the map page's LSN moving (the restore's
    /// checksum caught exactly that), nor the free space map (not WAL-logged).
    public static func isPageDeltaCandidate(_ path: String) -> Bool {
        guard isIncrementalCandidate(path), let name = path.split(separator: "/").last else { return false }
        return !name.contains("_")
    }

    public static func isIncrementalCandidate(_ path: String) -> Bool {
        let parts = path.split(separator: "/")
        guard let name = parts.last else { return false }
        let inPlace = (parts.count == 3 && parts[0] == "base") || (parts.count == 2 && parts[0] == "global")
            || (parts.count == 5 && parts[0] == "pg_tblspc" && parts[2].hasPrefix("PG_"))
        guard inPlace else { return false }
        var rest = Substring(name)
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty else { return false }
        rest = rest.dropFirst(digits.count)
        if rest.hasPrefix("_") {
            let fork = rest.dropFirst().prefix { $0 != "." }
            guard ["vm", "init"].contains(fork) else { return false }
            rest = rest.dropFirst(1 + fork.count)
        }
        if rest.hasPrefix(".") {
            let segment = rest.dropFirst()
            guard !segment.isEmpty, segment.allSatisfy({ $0.isASCII && $0.isNumber }) else { return false }
            return true
        }
        return rest.isEmpty
    }
}

/// Writes a relation file's changed pages as (block number, page) records, ascending: each page
/// whose checksum differs from the full's block map (or whose LSN is at or after `since`, when
/// there is no map), and every page beyond the `baseBlocks` the full's copy has.
final class BlockDeltaWriter {
    private let output: ByteStage
    private let rule: PageChangeRule
    private var splitter: PageSplitter
    private var block: UInt64 = 0
    private(set) var blocksWritten = 0

    init(output: ByteStage, blockSize: Int, since: LSN, baseBlocks: UInt64, baseMap: [UInt32]?) {
        self.output = output
        rule = PageChangeRule(since: since, baseBlocks: baseBlocks, baseMap: baseMap)
        splitter = PageSplitter(blockSize: blockSize)
    }

    func consume(_ bytes: UnsafeRawBufferPointer) throws {
        try splitter.consume(bytes) { try page($0) }
    }

    private func page(_ bytes: UnsafeRawBufferPointer) throws {
        defer { block += 1 }
        guard rule.changed(bytes, block: block) else { return }
        var number = UInt32(block).littleEndian
        try withUnsafeBytes(of: &number) { try output.consume($0) }
        try output.consume(bytes)
        blocksWritten += 1
    }

    func finish() throws {
        guard !splitter.hasPartialPage else { throw PGKeepError.protocolViolation("a relation file that is not a whole number of pages") }
    }
}
