import ArchiveStream
import Manifest
import PGKeep
import PGWire
import PluginFrames
import Repository
import Sinks

/// A base backup's members sent to Bacula as virtual files — /@PG/<service>/data/<path>,
/// /@PG/<service>/tablespaces/<oid>/<path> — straight from the server's stream, never through a
/// local copy. A full records each relation file's block map (into the plugin's state); a
/// differential sends only what changed since the full:
///
/// - a relation file the full has: its changed pages as `<path>.delta` (pages whose checksum
///   differs from the full's block map, or past its length); the full's copy is marked seen;
/// - the server's INCREMENTAL files (17+ with WAL summaries) as they are; the full's copy of the
///   relation is marked seen;
/// - any other file the full has, up to `smallFileLimit`: held in memory, and sent only when its
///   checksum differs from the full's (else marked seen);
/// - everything else, whole.
final class FrameArchiveStore: BackupArchiveConsumer {
    struct Parent {
        var files: [String: BackupManifest.File]
        var startLSN: LSN
        /// The full's record directory in the state (its block maps).
        var directory: String
        var method: BackupRecord.Method
    }

    static let smallFileLimit = 16 << 20

    let channel: FrameChannel
    let prefix: String
    let parent: Parent?
    let blockSize: Int
    /// Where a full's block maps go (the state's partial record directory).
    let mapRoot: String
    private(set) var tablespaces: [BackupRecord.Tablespace] = []
    private(set) var directories: [String] = []
    private(set) var manifestBytes: [UInt8]?
    var filesSent = 0
    var filesSeen = 0
    var bytesSent: UInt64 = 0

    init(channel: FrameChannel, prefix: String, parent: Parent?, blockSize: Int, mapRoot: String) {
        self.channel = channel
        self.prefix = prefix
        self.parent = parent
        self.blockSize = blockSize
        self.mapRoot = mapRoot
    }

    func tablespacesKnown(_ list: [BackupTablespace]) throws {
        tablespaces = BackupRecord.Tablespace.from(list)
    }

    func startArchive(_ tablespace: BackupTablespace) throws -> TarMemberConsumer {
        guard let oid = tablespace.oid, let location = tablespace.location else {
            return MemberFramer(store: self, virtualPrefix: prefix + "data/", manifestPrefix: "")
        }
        // An in-place tablespace lives inside the data directory.
        let virtual = location.hasPrefix("/") ? prefix + "tablespaces/\(oid)/" : prefix + "data/pg_tblspc/\(oid)/"
        return MemberFramer(store: self, virtualPrefix: virtual, manifestPrefix: "pg_tblspc/\(oid)/")
    }

    func manifestReceived(_ bytes: [UInt8]) throws { manifestBytes = bytes }

    func send(_ header: Frame.FileHeader) throws {
        try channel.send(.file(header))
        filesSent += 1
    }

    func seen(_ virtualPath: String) throws {
        try channel.send(.seen(virtualPath))
        filesSeen += 1
    }

    /// One archive's members.
    final class MemberFramer: TarMemberConsumer {
        private unowned let store: FrameArchiveStore
        private let virtualPrefix: String
        private let manifestPrefix: String
        private var current: Current?

        private enum Strategy {
            /// Sent as it streams.
            case whole
            /// Held until its checksum says whether it changed.
            case held([UInt8], Checksummer)
            /// Its changed pages, once the first one shows.
            case delta(BlockDeltaFramer)
        }

        private struct Current {
            var path: String
            var virtual: String
            var header: Frame.FileHeader
            var strategy: Strategy
            var mapper: (splitter: PageSplitter, crcs: [UInt32])?
        }

        init(store: FrameArchiveStore, virtualPrefix: String, manifestPrefix: String) {
            self.store = store
            self.virtualPrefix = virtualPrefix
            self.manifestPrefix = manifestPrefix
        }

        func beginMember(_ member: TarMember, rawHeader: UnsafeRawBufferPointer?) throws {
            let relative = member.path.description
            let path = manifestPrefix + relative
            switch member.kind {
            case .directory:
                // Sent as a directory of its own, so Bacula's restore tree has the empty ones too.
                store.directories.append(path)
                let name = relative.hasSuffix("/") ? String(relative.dropLast()) : relative
                if !name.isEmpty {
                    try store.channel.send(.file(.init(path: virtualPrefix + name, size: 0, mode: member.mode & 0o7777,
                                                       modificationTime: member.modificationTime, type: .directory)))
                }
                return
            case .symlink:
                return // pg_tblspc/<oid>: from the tablespace list
            case .file:
                break
            }
            let header = Frame.FileHeader(path: virtualPrefix + relative, size: Int64(member.size), mode: member.mode & 0o7777,
                                          modificationTime: member.modificationTime)
            var strategy = Strategy.whole
            if let parent = store.parent {
                let entry = parent.files[path]
                if let entry, RelationFile.isPageDeltaCandidate(path), member.size % UInt64(store.blockSize) == 0,
                   entry.size % UInt64(store.blockSize) == 0, parent.method == .file {
                    let map = try BlockMap.read(BlockMap.path(in: parent.directory, manifestPath: path))
                    strategy = .delta(BlockDeltaFramer(store: store, virtual: header.path, blockSize: store.blockSize,
                                                       baseBlocks: entry.size / UInt64(store.blockSize), baseMap: map,
                                                       since: parent.startLSN, mode: header.mode, time: header.modificationTime))
                } else if let entry, entry.algorithm != .none, entry.checksum != nil, member.size <= UInt64(FrameArchiveStore.smallFileLimit),
                          entry.size == member.size {
                    strategy = .held([], Checksummer(entry.algorithm))
                }
            }
            var mapper: (PageSplitter, [UInt32])?
            if store.parent == nil, RelationFile.isPageDeltaCandidate(path) { mapper = (PageSplitter(blockSize: store.blockSize), []) }
            if case .whole = strategy { try store.send(header) }
            current = Current(path: path, virtual: header.path, header: header, strategy: strategy, mapper: mapper)
        }

        func memberContents(_ bytes: UnsafeRawBufferPointer) throws {
            guard var file = current.take() else { return }
            defer { current = file }
            switch file.strategy {
            case .whole:
                try store.channel.sendData(bytes)
                store.bytesSent += UInt64(bytes.count)
            case .held(var held, let summer):
                file.strategy = .whole // while `held` is borrowed
                held.append(contentsOf: bytes)
                summer.update(bytes)
                file.strategy = .held(held, summer)
            case .delta(let framer):
                try framer.consume(bytes)
            }
            if var mapper = file.mapper {
                var crcs = mapper.crcs
                mapper.crcs = []
                try mapper.splitter.consume(bytes) { crcs.append(BlockMap.crc($0)) }
                mapper.crcs = crcs
                file.mapper = mapper
            }
        }

        func endMember() throws {
            guard let file = current.take() else { return }
            switch file.strategy {
            case .whole:
                try store.channel.send(.end)
            case .held(let bytes, let summer):
                if summer.finish() == store.parent?.files[file.path]?.checksum {
                    try store.seen(file.virtual)
                } else {
                    try store.send(file.header)
                    try bytes.withUnsafeBytes { try store.channel.sendData($0) }
                    store.bytesSent += UInt64(bytes.count)
                    try store.channel.send(.end)
                }
            case .delta(let framer):
                try framer.finish(newSize: UInt64(file.header.size))
                // The restore merges the delta with the full's copy: keep that.
                try store.seen(file.virtual)
            }
            if let mapper = file.mapper, !mapper.splitter.hasPartialPage {
                try BlockMap.write(mapper.crcs, to: BlockMap.path(in: store.mapRoot, manifestPath: file.path))
            }
            // A 17+ incremental file stands for the full's copy of its relation, which the restore needs.
            if store.parent?.method == .incremental, let relation = RepositoryRestoreJob.relationName(ofIncremental: file.path),
               store.parent?.files[relation] != nil {
                try store.seen(virtualPrefix + String(relation.dropFirst(manifestPrefix.count)))
            }
        }

        func endArchive() throws {}
    }
}

/// A relation file's changed pages as (block number, page) records in `<path>.delta`; the file
/// header goes out with the first changed page (a file with none, and its size unchanged, sends
/// nothing at all).
final class BlockDeltaFramer {
    private unowned let store: FrameArchiveStore
    private let virtual: String
    private let rule: PageChangeRule
    private let mode: UInt32
    private let time: Int64
    private var splitter: PageSplitter
    private var block: UInt64 = 0
    private var started = false

    init(store: FrameArchiveStore, virtual: String, blockSize: Int, baseBlocks: UInt64, baseMap: [UInt32]?, since: LSN, mode: UInt32, time: Int64) {
        self.store = store
        self.virtual = virtual
        rule = PageChangeRule(since: since, baseBlocks: baseBlocks, baseMap: baseMap)
        self.mode = mode
        self.time = time
        splitter = PageSplitter(blockSize: blockSize)
    }

    func consume(_ bytes: UnsafeRawBufferPointer) throws {
        try splitter.consume(bytes) { try page($0) }
    }

    private func start() throws {
        guard !started else { return }
        started = true
        try store.send(Frame.FileHeader(path: virtual + RepositoryLayout.deltaSuffix, size: -1, mode: mode, modificationTime: time))
    }

    private func page(_ bytes: UnsafeRawBufferPointer) throws {
        defer { block += 1 }
        guard rule.changed(bytes, block: block) else { return }
        try start()
        var number = UInt32(block).littleEndian
        try withUnsafeBytes(of: &number) { try store.channel.sendData($0) }
        try store.channel.sendData(bytes)
        store.bytesSent += UInt64(4 + bytes.count)
    }

    func finish(newSize: UInt64) throws {
        guard !splitter.hasPartialPage else { throw PGKeepError.protocolViolation("a relation file that is not a whole number of pages") }
        // A file that only shrank still needs its delta: the restore takes its length from the manifest.
        if !started && newSize != rule.baseBlocks * UInt64(splitter.blockSize) { try start() }
        if started { try store.channel.send(.end) }
    }
}
