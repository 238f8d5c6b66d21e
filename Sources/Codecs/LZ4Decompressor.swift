import ArchiveStream
import CLZ4

/// LZ4 frame decompression. Accepts concatenated frames.
public final class LZ4Decompressor: ByteStage {
    private let next: ByteStage
    private var context: OpaquePointer?
    private let output = OutputBuffer()
    /// LZ4F_decompress's hint: 0 once a frame is complete.
    private var expecting = 0

    public init(next: ByteStage) throws {
        self.next = next
        guard LZ4F_isError(LZ4F_createDecompressionContext(&context, UInt32(LZ4F_VERSION))) == 0 else {
            throw CodecError.setupFailed("LZ4F_createDecompressionContext failed")
        }
    }
    deinit { LZ4F_freeDecompressionContext(context) }

    public func consume(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        var destinationSize = 0
        repeat {
            var sourceSize = bytes.count - offset
            destinationSize = output.capacity
            let hint = LZ4F_decompress(context, output.base, &destinationSize, bytes.baseAddress.map { $0 + offset }, &sourceSize, nil)
            if LZ4F_isError(hint) != 0 { throw CodecError.corruptInput("lz4: " + String(cString: LZ4F_getErrorName(hint))) }
            try output.forward(destinationSize, to: next)
            offset += sourceSize
            if sourceSize == 0 && destinationSize == 0 { break }
            // Only a call that moved data updates the hint: with no input at a frame's end, lz4
            // answers with the size of the next frame's header, which would read as "truncated".
            expecting = hint
            // A full output buffer may mean more is held back: go round again even without input.
        } while offset < bytes.count || destinationSize == output.capacity
    }

    public func finish() throws {
        if expecting != 0 { throw CodecError.truncatedInput("lz4 frame did not end") }
        try next.finish()
    }
}
