import ArchiveStream

/// Compresses one stream after another, each into a stage of its own — WAL segments, one file
/// each — keeping what is costly to set up from one stream to the next: zstd's worker threads,
/// their contexts and their buffers.
///
/// zstd with no workers setting compresses on every online processor, as large repository files
/// do (`ParallelZstdCompressor`: 1 MiB frames, so a 16 MiB segment is spread over the workers
/// while it is still arriving). `workers=0`, long-distance matching, gzip and lz4 compress on the
/// calling thread, with a new context per stream (cheap for them).
public final class SegmentCompressor {
    public let spec: CompressionSpec
    private let pool: ZstdPiecePool?
    private var stream: ByteStage?

    public init(spec: CompressionSpec) throws {
        self.spec = spec
        // No workers setting: every online processor, as for a long stream.
        var pieces = spec
        if pieces.workers == nil { pieces.workers = ZstdCompressor.defaultWorkers }
        pool = try Codecs.pieceWorkers(pieces).map { try ParallelZstdCompressor.makePool(level: spec.level, workers: $0) }
    }

    deinit { pool?.stop() }

    /// Starts a stream into `next`, giving up any stream not finished.
    public func begin(next: ByteStage) throws {
        stream = nil
        if let pool {
            stream = ParallelZstdCompressor(pool: pool, next: next)
        } else {
            stream = try Codecs.compressor(spec, next: next)
        }
    }

    public func consume(_ bytes: UnsafeRawBufferPointer) throws {
        guard let stream else { preconditionFailure("SegmentCompressor.consume with no stream begun") }
        try stream.consume(bytes)
    }

    /// Ends the stream: everything is compressed and written on, and `next` finished.
    public func finish() throws {
        guard let stream = stream.take() else { preconditionFailure("SegmentCompressor.finish with no stream begun") }
        try stream.finish()
    }

    /// Gives up the stream: its output so far stays wherever `next` put it; work in flight is
    /// waited for and dropped.
    public func abandon() {
        stream = nil
    }
}
