import ArchiveStream
import CZstd

/// Zstandard decompression. Accepts concatenated frames.
public final class ZstdDecompressor: ByteStage {
    private let next: ByteStage
    private let context: OpaquePointer
    private let output = OutputBuffer()
    /// ZSTD_decompressStream's result: 0 once a frame is complete and flushed.
    private var pending = 0

    public init(next: ByteStage) throws {
        self.next = next
        guard let context = ZSTD_createDCtx() else { throw CodecError.setupFailed("ZSTD_createDCtx failed") }
        self.context = context
    }
    deinit { ZSTD_freeDCtx(context) }

    public func consume(_ bytes: UnsafeRawBufferPointer) throws {
        var input = ZSTD_inBuffer(src: bytes.baseAddress, size: bytes.count, pos: 0)
        repeat {
            let consumedBefore = input.pos
            var out = ZSTD_outBuffer(dst: output.base, size: output.capacity, pos: 0)
            let result = ZSTD_decompressStream(context, &out, &input)
            if ZSTD_isError(result) != 0 { throw CodecError.corruptInput("zstd: " + String(cString: ZSTD_getErrorName(result))) }
            try output.forward(out.pos, to: next)
            // Only a call that moved data updates the state: with no input at a frame's end, zstd
            // answers with the next frame's header size, which would read as "truncated".
            if out.pos > 0 || input.pos > consumedBefore { pending = result }
            // A full output buffer may mean zstd holds more: go round again even without input.
            if input.pos == input.size && out.pos < out.size { break }
        } while true
    }

    public func finish() throws {
        if pending != 0 { throw CodecError.truncatedInput("zstd frame did not end") }
        try next.finish()
    }
}
