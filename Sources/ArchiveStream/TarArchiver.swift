/// Turns members back into a tar byte stream: the inverse of `TarParser`. Unchanged members keep
/// the header bytes they arrived with; a member a stage made or altered gets a new header. Always
/// ends the archive with two zero blocks, so a 14 server's unterminated tar comes out whole.
public final class TarArchiver: TarMemberConsumer {
    private let next: ByteStage
    private var padding = 0
    private var header = [UInt8](repeating: 0, count: TarHeader.blockSize)

    public init(next: ByteStage) { self.next = next }

    public func beginMember(_ member: TarMember, rawHeader: UnsafeRawBufferPointer?) throws {
        if let rawHeader {
            try next.consume(rawHeader)
        } else {
            try header.withUnsafeMutableBytes { block in
                TarHeader.encode(member, into: block)
                try next.consume(UnsafeRawBufferPointer(block))
            }
        }
        padding = Int((512 - member.size % 512) % 512)
    }

    public func memberContents(_ bytes: UnsafeRawBufferPointer) throws { try next.consume(bytes) }

    public func endMember() throws {
        try ZeroBlocks.write(padding, to: next)
        padding = 0
    }

    public func endArchive() throws {
        try ZeroBlocks.write(1024, to: next)
        try next.finish()
    }
}
