import ArchiveStream
import CZstd

/// Zstandard compression on the calling thread; or, with `workers` > 0, on that many threads inside
/// libzstd — what `Codecs.compressor` uses only for long-distance matching (`long`), whose matches
/// cross pieces: other multi-threaded zstd is `ParallelZstdCompressor`.
public final class ZstdCompressor: ByteStage {
    private let next: ByteStage
    private let context: OpaquePointer
    private let output = OutputBuffer()

    public init(level: Int, workers: Int, longDistance: Bool = false, next: ByteStage) throws {
        self.next = next
        guard let context = ZSTD_createCCtx() else { throw CodecError.setupFailed("ZSTD_createCCtx failed") }
        self.context = context
        try check(ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, Int32(level)))
        if longDistance { try check(ZSTD_CCtx_setParameter(context, ZSTD_c_enableLongDistanceMatching, 1)) }
        if workers > 0 {
            let result = ZSTD_CCtx_setParameter(context, ZSTD_c_nbWorkers, Int32(workers))
            if ZSTD_isError(result) != 0 {
                throw CodecError.unsupported("this libzstd cannot compress with workers: " + String(cString: ZSTD_getErrorName(result)))
            }
            // Each job in flight holds its input and output: libzstd's default job (4 windows, 8 MiB
            // at level 3) made 2 workers cost 128 MB of RSS. 1 MiB jobs keep memory flat.
            try check(ZSTD_CCtx_setParameter(context, ZSTD_c_jobSize, Int32(Self.jobSize)))
            // Jobs do not reload the end of the previous one (overlapLog 1: none). At level 3 the
            // default overlap re-hashes a quarter of each 1 MiB job again: on a 1.3 GB cluster that
            // cost 10–15 % of the wall time and saved no bytes (the output was 0.3 % smaller without).
            try check(ZSTD_CCtx_setParameter(context, ZSTD_c_overlapLog, 1))
            // Without overlap no match reaches outside its job: a window larger than the job
            // (2 MiB at level 3) only costs each worker memory.
            if !longDistance { try check(ZSTD_CCtx_setParameter(context, ZSTD_c_windowLog, Int32(Self.jobSizeLog))) }
        }
    }
    deinit { ZSTD_freeCCtx(context) }

    static let jobSizeLog = 20
    static let jobSize = 1 << jobSizeLog

    /// One worker per online processor: what a long stream compresses with when the user names
    /// no number. The thread that feeds libzstd does the I/O meanwhile.
    public static var defaultWorkers: Int { Processors.online }

    public func consume(_ bytes: UnsafeRawBufferPointer) throws {
        var input = ZSTD_inBuffer(src: bytes.baseAddress, size: bytes.count, pos: 0)
        while input.pos < input.size { _ = try run(&input, ZSTD_e_continue) }
    }

    public func finish() throws {
        var input = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while try run(&input, ZSTD_e_end) != 0 {}
        try next.finish()
    }

    private func run(_ input: inout ZSTD_inBuffer, _ directive: ZSTD_EndDirective) throws -> Int {
        var out = ZSTD_outBuffer(dst: output.base, size: output.capacity, pos: 0)
        let remaining = ZSTD_compressStream2(context, &out, &input, directive)
        try check(remaining)
        try output.forward(out.pos, to: next)
        return remaining
    }

    private func check(_ code: Int) throws {
        if ZSTD_isError(code) != 0 { throw CodecError.compressionFailed("zstd: " + String(cString: ZSTD_getErrorName(code))) }
    }
}
