#if canImport(Glibc)
import Glibc
#endif
import ArchiveStream
import Codecs
import PGWire
import Sinks

/// Writes streamed segments into a WAL archive the way pg_receivewal does, so that a crash at any
/// moment leaves only complete segments under final names:
///
/// - a segment being received is `NAME.partial`, full size from the start (space reserved, so a
///   full disk fails when a segment is opened, never halfway through one);
/// - once full it is fsynced, then renamed to `NAME` (or compressed to `NAME.zst.tmp`, fsynced,
///   renamed to `NAME.zst`, and the partial removed), then the directory is fsynced — and only
///   then does the receiver report it flushed to the server.
///
/// A `.partial` is never compressed: a restart streams its segment again from the beginning into
/// the same file.
public final class WALArchiveWriter: WALSink {
    public struct CompletedSegment: Sendable {
        public var name: String
        /// The file's name in the archive (with compression suffix).
        public var fileName: String
        public var bytesOnDisk: UInt64
    }

    private let directory: String
    private let segmentSize: WALSegmentSize
    private let compression: CompressionSpec?
    private let sync: Bool
    private let onCompleted: (CompletedSegment) -> Void
    private var current: FileDescriptor?
    private var currentName = ""
    /// The current segment's writeback, started every MiB as it arrives (synced archives only):
    /// the fsync that completes the segment finds little left (a catch-up of 433 MB of WAL had
    /// waited in that fsync for every whole segment).
    private var writeback = Writeback()

    public init(directory: String, segmentSize: WALSegmentSize, compression: CompressionSpec?, sync: Bool = true,
                onCompleted: @escaping (CompletedSegment) -> Void = { _ in }) {
        self.directory = directory
        self.segmentSize = segmentSize
        self.compression = compression
        self.sync = sync
        self.onCompleted = onCompleted
    }

    public func openSegment(named name: String) throws {
        let path = directory + "/" + name + ".partial"
        // No O_EXCL: a restart rewrites its own partial segment from the start.
        let fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FileSystemError("create WAL segment", path) }
        let file = FileDescriptor(raw: fd, path: path)
        do {
            try file.allocate(Int64(segmentSize.bytes))
        } catch {
            // Leave no reserved-but-empty partial behind: a restart would otherwise treat it as
            // the newest segment (harmless, it is streamed again, but confusing to a person).
            if error.isNoSpace { unlink(path) }
            throw error
        }
        current = file
        currentName = name
        writeback = Writeback()
    }

    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard let current else { preconditionFailure("WAL write with no open segment") }
        try current.writeAll(bytes, at: Int64(offset))
        if sync { writeback.advance(current, to: Int64(offset) + Int64(bytes.count)) }
    }

    public func syncSegment() throws {
        try current?.sync()
    }

    public func closeSegment(complete: Bool) throws {
        guard let file = current.take() else { return }
        if sync { try file.sync() }
        guard complete else { return }
        let partial = currentName + ".partial"
        if let compression {
            let final = currentName + compression.algorithm.fileSuffix
            let bytes = try compress(directory + "/" + partial, into: final + ".tmp", spec: compression)
            try Durability.durableReplace(in: directory, from: final + ".tmp", to: final, sync: sync)
            guard unlink(directory + "/" + partial) == 0 else { throw FileSystemError("remove", directory + "/" + partial) }
            onCompleted(CompletedSegment(name: currentName, fileName: final, bytesOnDisk: bytes))
        } else {
            try Durability.durableReplace(in: directory, from: partial, to: currentName, sync: sync)
            onCompleted(CompletedSegment(name: currentName, fileName: currentName, bytesOnDisk: segmentSize.bytes))
        }
    }

    public func finish() throws {
        try closeSegment(complete: false)
    }

    /// Reads the finished segment back (it is in the page cache) through the codec into a new file.
    private func compress(_ source: String, into name: String, spec: CompressionSpec) throws -> UInt64 {
        let path = directory + "/" + name
        unlink(path)
        let sink = try FileSink(path: path, syncOnFinish: sync, startsWriteback: sync)
        let compressor = try Codecs.compressor(spec, next: sink)
        var read: UInt64 = 0
        try forEachChunk(ofFileAt: source, chunkSize: preferredWriteSize) { chunk in
            try compressor.consume(chunk)
            read += UInt64(chunk.count)
        }
        guard read == segmentSize.bytes else { throw FileSystemError("read back", source, errno: EIO) }
        try compressor.finish()
        return sink.bytesWritten
    }
}
