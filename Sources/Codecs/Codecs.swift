import ArchiveStream

/// Builds codec stages by algorithm, so callers never switch over algorithms themselves.
public enum Codecs {
    public static func compressor(_ spec: CompressionSpec, next: ByteStage) throws -> ByteStage {
        switch spec.algorithm {
        case .gzip: try GzipCompressor(level: spec.level ?? 6, next: next)
        case .lz4: try LZ4Compressor(level: spec.level ?? 1, next: next)
        case .zstd:
            if let workers = pieceWorkers(spec) {
                try ParallelZstdCompressor(level: spec.level, workers: workers, next: next)
            } else {
                // One thread, or long-distance matching, whose matches cross pieces: libzstd's own workers.
                try ZstdCompressor(level: spec.level ?? Int(ZstdPieceLevels.defaultLevel), workers: spec.workers ?? 0, longDistance: spec.longDistance ?? false, next: next)
            }
        }
    }

    /// The workers `ParallelZstdCompressor` compresses `spec` on; nil when it is not for it: not
    /// zstd, one thread (`workers` nil or 0), or long-distance matching, whose matches cross pieces.
    static func pieceWorkers(_ spec: CompressionSpec) -> Int? {
        guard spec.algorithm == .zstd, let workers = spec.workers, workers > 0, spec.longDistance != true else { return nil }
        return workers
    }

    public static func decompressor(_ algorithm: CompressionSpec.Algorithm, next: ByteStage) throws -> ByteStage {
        switch algorithm {
        case .gzip: try GzipDecompressor(next: next)
        case .lz4: try LZ4Decompressor(next: next)
        case .zstd: try ZstdDecompressor(next: next)
        }
    }

    /// Output buffer size of every codec stage: what the sink then writes in one piece.
    static let outputBufferSize = preferredWriteSize
}

/// A fixed output buffer a codec fills and hands on when full; allocated once per stage.
struct OutputBuffer: ~Copyable {
    let base: UnsafeMutableRawPointer
    let capacity: Int
    init(capacity: Int = Codecs.outputBufferSize) {
        self.capacity = capacity
        base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
    }
    deinit { base.deallocate() }
    func forward(_ count: Int, to next: ByteStage) throws {
        if count > 0 { try next.consume(UnsafeRawBufferPointer(start: base, count: count)) }
    }
}
