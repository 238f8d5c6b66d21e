/// Turns a tar byte stream into members, in place: headers are decoded straight from the input
/// buffer when whole (only a header split across buffers is copied, into a 512-byte scratch), and
/// member contents go to the next stage as slices of the input, never copied.
///
/// A 14 server does not send the two zero blocks that end a tar; with `requiresTerminator`
/// false, a stream that ends cleanly between members is complete. A stream that ends inside a
/// member, a header or its padding is always an error.
public final class TarParser: ByteStage {
    private enum State {
        case header
        /// After one zero block: the second must follow.
        case secondZeroBlock
        case contents(remaining: UInt64, padding: Int)
        case padding(remaining: Int)
        case ended
    }

    private let next: TarMemberConsumer
    private let requiresTerminator: Bool
    private var state: State = .header
    private var scratch = [UInt8](repeating: 0, count: TarHeader.blockSize)
    private var scratchFill = 0
    /// Bytes consumed so far: for error messages.
    private var offset: UInt64 = 0
    private var currentPath = ""
    public private(set) var memberCount = 0

    public init(next: TarMemberConsumer, requiresTerminator: Bool = true) {
        self.next = next
        self.requiresTerminator = requiresTerminator
    }

    public func consume(_ bytes: UnsafeRawBufferPointer) throws {
        var index = 0
        while index < bytes.count {
            let available = bytes.count - index
            switch state {
            case .header, .secondZeroBlock:
                if scratchFill == 0, available >= TarHeader.blockSize {
                    try headerBlock(UnsafeRawBufferPointer(rebasing: bytes[index..<index + TarHeader.blockSize]))
                    index += TarHeader.blockSize
                } else {
                    let take = min(available, TarHeader.blockSize - scratchFill)
                    scratch.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: scratchFill).copyMemory(from: bytes.baseAddress!.advanced(by: index), byteCount: take) }
                    scratchFill += take
                    index += take
                    if scratchFill == TarHeader.blockSize {
                        scratchFill = 0
                        try scratch.withUnsafeBytes { try headerBlock($0) }
                    }
                }
            case .contents(let remaining, let padding):
                let take = Int(min(remaining, UInt64(available)))
                try next.memberContents(UnsafeRawBufferPointer(rebasing: bytes[index..<index + take]))
                index += take
                offset += UInt64(take)
                if remaining == UInt64(take) {
                    try next.endMember()
                    state = padding > 0 ? .padding(remaining: padding) : .header
                } else {
                    state = .contents(remaining: remaining - UInt64(take), padding: padding)
                }
            case .padding(let remaining):
                let take = min(remaining, available)
                index += take
                offset += UInt64(take)
                state = remaining == take ? .header : .padding(remaining: remaining - take)
            case .ended:
                // Writers may pad the archive out to a record size with zeros; anything else is wrong.
                let rest = UnsafeRawBufferPointer(rebasing: bytes[index...])
                if let bad = rest.firstIndex(where: { $0 != 0 }) { throw TarError.garbageAfterEnd(offset: offset + UInt64(bad)) }
                offset += UInt64(rest.count)
                index = bytes.count
            }
        }
    }

    public func finish() throws {
        switch state {
        case .ended:
            break
        case .header where scratchFill == 0 && !requiresTerminator:
            break
        case .header, .secondZeroBlock:
            if scratchFill > 0 { throw TarError.truncated("stream ended inside a tar header at byte \(offset)") }
            throw TarError.truncated("stream ended without the end-of-archive blocks after \(memberCount) members")
        case .contents(let remaining, _):
            throw TarError.truncated("stream ended inside \(currentPath), \(remaining) bytes short")
        case .padding:
            throw TarError.truncated("stream ended inside the padding after \(currentPath)")
        }
        try next.endArchive()
    }

    private func headerBlock(_ block: UnsafeRawBufferPointer) throws {
        defer { offset += UInt64(TarHeader.blockSize) }
        if TarHeader.isZeroBlock(block) {
            if case .secondZeroBlock = state { state = .ended } else { state = .secondZeroBlock }
            return
        }
        if case .secondZeroBlock = state {
            throw TarError.truncated("a lone zero block in the middle of the archive at byte \(offset - 512)")
        }
        let member = try TarHeader.decode(block, offset: offset)
        memberCount += 1
        currentPath = member.path.description
        try next.beginMember(member, rawHeader: block)
        if member.size == 0 {
            try next.endMember()
            state = .header
        } else {
            let padding = Int((UInt64(TarHeader.blockSize) - member.size % UInt64(TarHeader.blockSize)) % UInt64(TarHeader.blockSize))
            state = .contents(remaining: member.size, padding: padding)
        }
    }
}
