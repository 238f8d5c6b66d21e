import ArchiveStream
import CZlib
import CPGKeepShims

/// gzip decompression with zlib. Accepts concatenated gzip members, as gunzip does.
public final class GzipDecompressor: ByteStage {
    private let next: ByteStage
    private var stream = z_stream()
    private let output = OutputBuffer()
    private var inMember = false

    public init(next: ByteStage) throws {
        self.next = next
        guard pgkeep_inflate_init_gzip(&stream) == Z_OK else { throw CodecError.setupFailed("inflateInit2 failed") }
    }
    deinit { inflateEnd(&stream) }

    public func consume(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        stream.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(bytes.count)
        // Loop while input remains or the output buffer came back full (inflate may hold more).
        repeat {
            // Only input starts (or continues) a member: a pass made just to drain a full output
            // buffer after a member's end must not count as the start of another.
            if stream.avail_in > 0 { inMember = true }
            stream.next_out = output.base.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(output.capacity)
            let result = inflate(&stream, Z_NO_FLUSH)
            try output.forward(output.capacity - Int(stream.avail_out), to: next)
            switch result {
            case Z_OK, Z_BUF_ERROR: continue
            case Z_STREAM_END:
                inMember = false
                inflateReset(&stream)
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "inflate returned \(result)"
                throw CodecError.corruptInput("gzip: \(message)")
            }
        } while stream.avail_in > 0 || stream.avail_out == 0
    }

    public func finish() throws {
        if inMember { throw CodecError.truncatedInput("gzip stream did not end") }
        try next.finish()
    }
}
