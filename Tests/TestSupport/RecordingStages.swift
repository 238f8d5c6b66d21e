import ArchiveStream

/// Records what a tar parser emits, as comparable values: the test-side end of a chain.
public final class RecordingMemberConsumer: TarMemberConsumer {
    public struct Entry: Equatable, CustomStringConvertible {
        public var path: String
        public var kind: TarMember.Kind
        public var size: UInt64
        public var contents: [UInt8]
        public var description: String { "\(path) \(kind) \(size)" }
    }
    public private(set) var entries: [Entry] = []
    public private(set) var ended = false
    private var open: Entry?

    public init() {}

    public func beginMember(_ member: TarMember, rawHeader: UnsafeRawBufferPointer?) throws {
        precondition(open == nil, "beginMember while a member is open")
        open = Entry(path: member.path.description, kind: member.kind, size: member.size, contents: [])
    }
    public func memberContents(_ bytes: UnsafeRawBufferPointer) throws { open!.contents.append(contentsOf: bytes) }
    public func endMember() throws {
        entries.append(open!)
        open = nil
    }
    public func endArchive() throws { ended = true }
}

/// Collects a byte stream (test side only: production code never accumulates).
public final class CollectingStage: ByteStage {
    public private(set) var bytes: [UInt8] = []
    public private(set) var finished = false
    public init() {}
    public func consume(_ bytes: UnsafeRawBufferPointer) throws { self.bytes.append(contentsOf: bytes) }
    public func finish() throws { finished = true }
}

/// Builds tar archives for tests, including broken and hostile ones.
public struct TarBuilder {
    public var bytes: [UInt8] = []
    public init() {}

    public mutating func file(_ path: String, _ contents: [UInt8], mode: UInt32 = 0o600) {
        header(path: path, typeflag: "0", size: UInt64(contents.count), mode: mode)
        bytes += contents
        pad()
    }
    public mutating func directory(_ path: String) { header(path: path.hasSuffix("/") ? path : path + "/", typeflag: "5", size: 0, mode: 0o700) }
    public mutating func symlink(_ path: String, target: String) { header(path: path, typeflag: "2", size: 0, mode: 0o777, link: target) }
    public mutating func raw(typeflag: Character, path: String, size: UInt64 = 0) { header(path: path, typeflag: typeflag, size: size, mode: 0o600) }
    public mutating func end() { bytes += [UInt8](repeating: 0, count: 1024) }

    /// A header with arbitrary name bytes (bypassing any validation), for hostile archives.
    public mutating func header(path: String, typeflag: Character, size: UInt64, mode: UInt32, link: String = "") {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, _ offset: Int) { for (i, b) in text.utf8.enumerated() { block[offset + i] = b } }
        func octal(_ value: UInt64, _ offset: Int, _ width: Int) {
            let digits = String(value, radix: 8)
            put(String(repeating: "0", count: width - 1 - digits.count) + digits, offset)
        }
        put(path, 0)
        octal(UInt64(mode), 100, 8); octal(0, 108, 8); octal(0, 116, 8)
        if size < 0o77777777777 { octal(size, 124, 12) } else {
            block[124] = 0x80
            var value = size
            for i in stride(from: 135, to: 124, by: -1) { block[i] = UInt8(truncatingIfNeeded: value); value >>= 8 }
        }
        octal(1_700_000_000, 136, 12)
        block[156] = typeflag.asciiValue!
        put(link, 157)
        put("ustar", 257); put("00", 263)
        for i in 148..<156 { block[i] = 0x20 }
        let sum = block.reduce(0) { $0 + UInt64($1) }
        octal(sum, 148, 7)
        block[155] = 0x20
        bytes += block
    }

    public mutating func pad() {
        let remainder = bytes.count % 512
        if remainder != 0 { bytes += [UInt8](repeating: 0, count: 512 - remainder) }
    }
}
