import ArchiveStream
import CZlib
import CPGKeepShims

/// gzip (RFC 1952) compression with zlib, streaming into a fixed buffer.
public final class GzipCompressor: ByteStage {
    private let next: ByteStage
    private var stream = z_stream()
    private let output = OutputBuffer()

    public init(level: Int, next: ByteStage) throws {
        self.next = next
        guard pgkeep_deflate_init_gzip(&stream, Int32(level)) == Z_OK else { throw CodecError.setupFailed("deflateInit2 failed") }
    }
    deinit { deflateEnd(&stream) }

    public func consume(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        stream.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(bytes.count)
        while stream.avail_in > 0 { try run(Z_NO_FLUSH) }
    }

    public func finish() throws {
        stream.next_in = nil
        stream.avail_in = 0
        while try run(Z_FINISH) != Z_STREAM_END {}
        try next.finish()
    }

    @discardableResult
    private func run(_ flush: Int32) throws -> Int32 {
        stream.next_out = output.base.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = uInt(output.capacity)
        let result = deflate(&stream, flush)
        guard result == Z_OK || result == Z_STREAM_END || result == Z_BUF_ERROR else {
            throw CodecError.compressionFailed("deflate returned \(result)")
        }
        try output.forward(output.capacity - Int(stream.avail_out), to: next)
        return result
    }
}
