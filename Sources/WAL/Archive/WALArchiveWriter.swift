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
/// - once full it is fsynced, then renamed to `NAME` (or, compressed, `NAME.zst.tmp` is fsynced,
///   renamed to `NAME.zst`, and the partial removed), then the directory is fsynced — and only
///   then does the receiver report it flushed to the server.
///
/// A compressed segment is compressed as it arrives, into `NAME.zst.tmp` beside the partial (by
/// zstd's workers, see `SegmentCompressor`), so completing it only ends the stream: no second
/// pass over 16 MiB. A `.partial` is never compressed: a restart streams its segment again from
/// the beginning into the same file. So when segments are compressed, a complete partial is not
/// made durable on its own: the compressed copy is, before the server hears of it, and the partial
/// is removed moments later — its pages usually never reach the disk (the raw segment's writes
/// saved). What a mid-segment flush report promised (`syncSegment`, a stop) is still fsynced in
/// the partial.
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
    /// The current segment's writeback, started every MiB as it arrives (synced, uncompressed
    /// archives only): the fsync that completes the segment finds little left (a catch-up of
    /// 433 MB of WAL had waited in that fsync for every whole segment).
    private var writeback = Writeback()
    /// Made at the first compressed segment, kept for the next ones.
    private var compressor: SegmentCompressor?
    /// The current segment's compressed copy while it is being written, and how much of the
    /// segment it holds: nil when not compressing, or when the segment did not arrive in order
    /// from its start (then the completed partial is read back and compressed).
    private var compressed: (sink: FileSink, through: UInt64)?

    public init(directory: String, segmentSize: WALSegmentSize, compression: CompressionSpec?, sync: Bool = true,
                onCompleted: @escaping (CompletedSegment) -> Void = { _ in }) {
        self.directory = directory
        self.segmentSize = segmentSize
        self.compression = compression
        self.sync = sync
        self.onCompleted = onCompleted
    }

    deinit { abandonCompressedCopy() }

    public func openSegment(named name: String) throws {
        abandonCompressedCopy()
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
        if compression != nil { try startCompressedCopy() }
    }

    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard let current else { preconditionFailure("WAL write with no open segment") }
        try current.writeAll(bytes, at: Int64(offset))
        if compressed?.through == offset {
            try compressor!.consume(bytes)
            compressed!.through += UInt64(bytes.count)
        } else if compressed != nil {
            abandonCompressedCopy()
        } else if sync && compression == nil {
            writeback.advance(current, to: Int64(offset) + Int64(bytes.count))
        }
    }

    public func syncSegment() throws {
        try current?.sync()
    }

    public func closeSegment(complete: Bool) throws {
        guard let file = current.take() else { return }
        // A partial that stays (stop, shutdown) or is renamed into place must be durable; one about
        // to be compressed need not (see the type's comment).
        if sync && (!complete || compression == nil) { try file.sync() }
        guard complete else { return abandonCompressedCopy() }
        let partial = currentName + ".partial"
        if let compression {
            let final = currentName + compression.algorithm.fileSuffix
            if compressed?.through != segmentSize.bytes { try compressReadingBack(directory + "/" + partial) }
            let bytes = try finishCompressedCopy()
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

    // MARK: Compressed copy

    /// Begins `NAME.zst.tmp` (any leftover replaced) with the compressor's stream into it.
    private func startCompressedCopy() throws {
        let path = directory + "/" + currentName + compression!.algorithm.fileSuffix + ".tmp"
        unlink(path)
        let sink = try FileSink(path: path, syncOnFinish: sync, startsWriteback: sync)
        if compressor == nil { compressor = try SegmentCompressor(spec: compression!) }
        try compressor!.begin(next: sink)
        compressed = (sink, 0)
    }

    /// Ends the compressed copy (flushed, and fsynced when syncing); its size on disk. A failure
    /// gives it up.
    private func finishCompressedCopy() throws -> UInt64 {
        guard let copy = compressed else { preconditionFailure("no compressed copy to finish") }
        do {
            try compressor!.finish()
        } catch {
            abandonCompressedCopy()
            throw error
        }
        compressed = nil
        return copy.sink.bytesWritten
    }

    /// Drops the compressed copy being written, if any, and its file.
    private func abandonCompressedCopy() {
        guard let copy = compressed.take() else { return }
        compressor?.abandon()
        unlink(copy.sink.path)
    }

    /// Writes the compressed copy again from the completed partial, read back (it is in the page
    /// cache): for a segment whose copy was not written as it arrived.
    private func compressReadingBack(_ source: String) throws {
        abandonCompressedCopy()
        try startCompressedCopy()
        do {
            try forEachChunk(ofFileAt: source, chunkSize: preferredWriteSize) { chunk in
                try compressor!.consume(chunk)
                compressed!.through += UInt64(chunk.count)
            }
            guard compressed!.through == segmentSize.bytes else { throw FileSystemError("read back", source, errno: EIO) }
        } catch {
            abandonCompressedCopy()
            throw error
        }
    }
}
