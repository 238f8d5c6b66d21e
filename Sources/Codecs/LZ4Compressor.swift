import ArchiveStream
import CLZ4

/// LZ4 frame compression (the format `lz4` and PostgreSQL write).
public final class LZ4Compressor: ByteStage {
    private let next: ByteStage
    private var context: OpaquePointer?
    private var preferences = LZ4F_preferences_t()
    private let output: OutputBuffer
    /// Input is fed in pieces of at most this, so one compressUpdate always fits the output buffer.
    private static let inputChunk = 256 << 10

    public init(level: Int, next: ByteStage) throws {
        self.next = next
        preferences.compressionLevel = Int32(level)
        output = OutputBuffer(capacity: max(Codecs.outputBufferSize, LZ4F_compressBound(Self.inputChunk, &preferences) + 64))
        guard LZ4F_isError(LZ4F_createCompressionContext(&context, UInt32(LZ4F_VERSION))) == 0 else {
            throw CodecError.setupFailed("LZ4F_createCompressionContext failed")
        }
        let written = LZ4F_compressBegin(context, output.base, output.capacity, &preferences)
        try check(written)
        try output.forward(written, to: next)
    }
    deinit { LZ4F_freeCompressionContext(context) }

    public func consume(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let take = min(Self.inputChunk, bytes.count - offset)
            let written = LZ4F_compressUpdate(context, output.base, output.capacity, bytes.baseAddress! + offset, take, nil)
            try check(written)
            try output.forward(written, to: next)
            offset += take
        }
    }

    public func finish() throws {
        let written = LZ4F_compressEnd(context, output.base, output.capacity, nil)
        try check(written)
        try output.forward(written, to: next)
        try next.finish()
    }

    private func check(_ code: Int) throws {
        if LZ4F_isError(code) != 0 { throw CodecError.compressionFailed("lz4: " + String(cString: LZ4F_getErrorName(code))) }
    }
}
