/// The messages between the Bacula plugin (`pgkeep-fd.so`, C) and its backend (`pgkeep bacula
/// backend`, Swift), over two pipes. Every frame is a type byte, a big-endian UInt32 payload
/// length, and the payload; integers in payloads are big-endian, strings a UInt32 length then
/// UTF-8 bytes. The C side (Sources/CBaculaFD/frames.c) reads and writes the same bytes; both are
/// tested against the golden frames in fixtures/frames.
///
/// Backend → plugin: `file` headers (path, size, mode, mtime, type) with `data` chunks and `end`; `seen` (a file left unchanged,
/// for Bacula's accurate mode); `message`s with a severity; `done` with the outcome.
/// Plugin → backend (restore): `file`, `data`, `end` for each file Bacula restores, then `done`.
public enum Frame: Equatable, Sendable {
    /// What a header announces: a regular file (data follows) or a directory (none does).
    public enum FileType: UInt8, Sendable {
        case regular = 0x66 // f
        case directory = 0x64 // d
    }

    public struct FileHeader: Equatable, Sendable {
        /// The virtual path, e.g. /@PG/main/data/base/5/1259.
        public var path: String
        /// Bytes that will follow; -1 when not known in advance.
        public var size: Int64
        public var mode: UInt32
        public var modificationTime: Int64
        public var type: FileType

        public init(path: String, size: Int64, mode: UInt32, modificationTime: Int64, type: FileType = .regular) {
            self.path = path
            self.size = size
            self.mode = mode
            self.modificationTime = modificationTime
            self.type = type
        }
    }

    public enum Severity: UInt8, Sendable {
        case info = 0x49 // I
        case warning = 0x57 // W
        case error = 0x45 // E
        /// Ends the job: the plugin raises M_FATAL.
        case fatal = 0x46 // F
    }

    case file(FileHeader)
    case data([UInt8])
    case end
    case seen(String)
    case message(Severity, String)
    case done(ok: Bool)

    /// Type bytes, in ASCII so a hex dump reads.
    public enum Kind: UInt8, Sendable {
        case file = 0x46 // F
        case data = 0x44 // D
        case end = 0x45 // E
        case seen = 0x53 // S
        case message = 0x4D // M
        case done = 0x5A // Z
    }

    /// Larger payloads are refused (both sides: PGK_FRAME_MAX_PAYLOAD); data chunks are 64 KiB.
    public static let maximumPayload = 1 << 20
    public static let headerSize = 5
}

public enum FrameError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownKind(UInt8)
    case payloadTooLarge(Int)
    case malformed(String)

    public var description: String {
        switch self {
        case .unknownKind(let byte): "unknown frame type 0x\(String(byte, radix: 16))"
        case .payloadTooLarge(let size): "frame payload of \(size) bytes is over the limit"
        case .malformed(let what): "malformed \(what) frame"
        }
    }
}

extension Frame {
    /// The frame's bytes.
    public func encoded() -> [UInt8] {
        var payload: [UInt8] = []
        let kind: Kind
        switch self {
        case .file(let header):
            kind = .file
            payload.appendString(header.path)
            payload.appendInteger(UInt64(bitPattern: header.size))
            payload.appendInteger(header.mode)
            payload.appendInteger(UInt64(bitPattern: header.modificationTime))
            payload.append(header.type.rawValue)
        case .data(let bytes):
            kind = .data
            payload = bytes
        case .end:
            kind = .end
        case .seen(let path):
            kind = .seen
            payload.appendString(path)
        case .message(let severity, let text):
            kind = .message
            payload.append(severity.rawValue)
            payload.appendString(text)
        case .done(let ok):
            kind = .done
            payload.append(ok ? 0 : 1)
        }
        return Self.header(kind, length: payload.count) + payload
    }

    /// A frame header for `kind` with a payload of `length` bytes (data frames are written as
    /// header + the bytes where they lie, without building an array).
    public static func header(_ kind: Kind, length: Int) -> [UInt8] {
        var bytes: [UInt8] = [kind.rawValue]
        bytes.appendInteger(UInt32(length))
        return bytes
    }

    /// Decodes one frame from the front of `bytes`: the frame and its total size, or nil when
    /// more bytes are needed.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(FrameError) -> (Frame, Int)? {
        guard let (kind, payload) = try split(bytes) else { return nil }
        return (try decode(kind, payload), headerSize + payload.count)
    }

    /// The kind and payload of the frame at the front of `bytes`, or nil when more bytes are
    /// needed. The payload is `bytes`' own memory.
    static func split(_ bytes: UnsafeRawBufferPointer) throws(FrameError) -> (Kind, UnsafeRawBufferPointer)? {
        guard bytes.count >= headerSize else { return nil }
        guard let kind = Kind(rawValue: bytes[0]) else { throw .unknownKind(bytes[0]) }
        let length = Int(UInt32(bytes[1]) << 24 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 8 | UInt32(bytes[4]))
        guard length <= maximumPayload else { throw .payloadTooLarge(length) }
        guard bytes.count >= headerSize + length else { return nil }
        return (kind, UnsafeRawBufferPointer(rebasing: bytes[headerSize..<headerSize + length]))
    }

    /// The frame of `kind` whose payload is `payload`.
    static func decode(_ kind: Kind, _ payload: UnsafeRawBufferPointer) throws(FrameError) -> Frame {
        var reader = PayloadReader(bytes: payload)
        switch kind {
        case .file:
            guard let path = reader.string(), let size = reader.uint64(), let mode = reader.uint32(), let time = reader.uint64(),
                  let typeByte = reader.byte(), let type = FileType(rawValue: typeByte), reader.atEnd
            else { throw .malformed("file") }
            return .file(FileHeader(path: path, size: Int64(bitPattern: size), mode: mode, modificationTime: Int64(bitPattern: time), type: type))
        case .data:
            return .data(Array(payload))
        case .end:
            guard reader.atEnd else { throw .malformed("end") }
            return .end
        case .seen:
            guard let path = reader.string(), reader.atEnd else { throw .malformed("seen") }
            return .seen(path)
        case .message:
            guard let byte = reader.byte(), let severity = Severity(rawValue: byte), let text = reader.string(), reader.atEnd
            else { throw .malformed("message") }
            return .message(severity, text)
        case .done:
            guard let status = reader.byte(), reader.atEnd, status <= 1 else { throw .malformed("done") }
            return .done(ok: status == 0)
        }
    }
}

struct PayloadReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0
    var atEnd: Bool { offset == bytes.count }

    mutating func byte() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func uint32() -> UInt32? {
        guard bytes.count - offset >= 4 else { return nil }
        defer { offset += 4 }
        return (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(bytes[offset + $1]) }
    }

    mutating func uint64() -> UInt64? {
        guard let high = uint32(), let low = uint32() else { return nil }
        return UInt64(high) << 32 | UInt64(low)
    }

    mutating func string() -> String? {
        guard let length = uint32(), bytes.count - offset >= Int(length) else { return nil }
        defer { offset += Int(length) }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + Int(length)]), as: UTF8.self)
    }
}

extension Array where Element == UInt8 {
    mutating func appendInteger<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    mutating func appendString(_ text: String) {
        appendInteger(UInt32(text.utf8.count))
        append(contentsOf: text.utf8)
    }
}

/// Frames out of a byte stream read in arbitrary pieces. The stream is read straight into the
/// buffer (`fill`) and a data frame's payload is lent where it lies (`next(data:)`): on a
/// restore's path no copy and no allocation per frame. It holds at most one frame (1 MiB) and
/// one read.
public struct FrameBuffer: Sendable {
    private var storage: [UInt8]
    /// The bytes read and not yet taken: storage[start..<end].
    private var start = 0
    private var end = 0

    /// The space `fill` offers at least.
    public static let readSize = 256 << 10

    public init() {
        storage = [UInt8](repeating: 0, count: Self.readSize)
    }

    public var isEmpty: Bool { start == end }

    /// Bytes the buffer holds room for (tests check the bound).
    var capacity: Int { storage.count }

    /// Lets `body` write into the free space behind the bytes not yet taken (at least `readSize`
    /// bytes: what is left of a frame moves to the front, or the buffer grows, first); `body`
    /// returns how many bytes it wrote, or a negative number (nothing was). Call it when `next`
    /// has returned nil.
    @discardableResult
    public mutating func fill(_ body: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        if start == end { start = 0; end = 0 }
        if storage.count - end < Self.readSize {
            if start > 0 {
                let (from, count) = (start, end - start)
                storage.withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: $0.baseAddress! + from, byteCount: count) }
                (start, end) = (0, count)
            }
            if storage.count - end < Self.readSize {
                storage.append(contentsOf: repeatElement(0, count: Self.readSize - (storage.count - end)))
            }
        }
        let free = end
        let written = storage.withUnsafeMutableBytes { body(UnsafeMutableRawBufferPointer(rebasing: $0[free...])) }
        precondition(written <= storage.count - end, "FrameBuffer.fill: more bytes written than offered")
        end += max(written, 0)
        return written
    }

    /// Copies `chunk` in.
    public mutating func append(_ chunk: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < chunk.count {
            fill { space in
                let count = min(space.count, chunk.count - offset)
                space.copyMemory(from: UnsafeRawBufferPointer(rebasing: chunk[offset..<offset + count]))
                offset += count
                return count
            }
        }
    }

    /// The next whole frame other than data, or nil when more bytes are needed. Data frames met
    /// on the way go to `data`, their payload lent from the buffer for the call only.
    public mutating func next(data: (UnsafeRawBufferPointer) throws -> Void) throws -> Frame? {
        while true {
            let (start, end) = (self.start, self.end)
            let taken: (frame: Frame?, size: Int)? = try storage.withUnsafeBytes { raw in
                guard let (kind, payload) = try Frame.split(UnsafeRawBufferPointer(rebasing: raw[start..<end])) else { return nil }
                if kind == .data {
                    try data(payload)
                    return (nil, Frame.headerSize + payload.count)
                }
                return (try Frame.decode(kind, payload), Frame.headerSize + payload.count)
            }
            guard let taken else { return nil }
            self.start += taken.size
            if let frame = taken.frame { return frame }
        }
    }

    /// The next whole frame, or nil when more bytes are needed; a data frame's payload is copied
    /// into the frame.
    public mutating func next() throws(FrameError) -> Frame? {
        let (start, end) = (self.start, self.end)
        let decoded: Result<(Frame, Int)?, FrameError> = storage.withUnsafeBytes { raw in
            Result { () throws(FrameError) in try Frame.decode(UnsafeRawBufferPointer(rebasing: raw[start..<end])) }
        }
        guard let (frame, size) = try decoded.get() else { return nil }
        self.start += size
        return frame
    }
}
