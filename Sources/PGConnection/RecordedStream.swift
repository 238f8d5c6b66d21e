#if canImport(Glibc)
import Glibc
#endif
import PGWire

/// A BASE_BACKUP conversation on disk, event by event, for replaying without a server.
///
/// Format (all integers big-endian): a header `PGKEEPSTREAM1\n`, the server version (u32), then
/// records of kind byte + u32 length + payload:
///   'T' rows: u32 rows, per row u32 columns, per column i32 length (-1 = NULL) + bytes
///   'C' CopyOut started · 'B' CopyBoth started · 'D' CopyData (payload = message) · 'E' COPY ended
///   'K' command OK · 'X' error (payload = SQLSTATE + NUL + message) · 'Z' end of command
public enum RecordedStreamFormat {
    static let magic = Array("PGKEEPSTREAM1\n".utf8)
}

/// Wraps a live stream and writes everything it returns to a file (`pgkeep backup --record-stream`).
public final class RecordingStream: CommandStream {
    private let inner: CommandStream
    private let file: UnsafeMutablePointer<FILE>

    public init(recording inner: CommandStream, to path: String) throws {
        guard let file = fopen(path, "wbx") else { throw ConnectionError.lost("cannot create recording \(path)") }
        self.inner = inner
        self.file = file
        write(RecordedStreamFormat.magic)
        var header: [UInt8] = []
        header.appendInteger(UInt32(inner.serverVersion.number))
        write(header)
    }

    deinit { fclose(file) }

    public var serverVersion: ServerVersion { inner.serverVersion }
    public func send(_ text: String) throws { try inner.send(text) }
    public func waitForInput(milliseconds: Int32) throws -> Bool { try inner.waitForInput(milliseconds: milliseconds) }

    public func nextResult() throws -> ResultEvent? {
        let event: ResultEvent?
        do { event = try inner.nextResult() } catch let error as ConnectionError {
            if case .server(let server) = error { record("X", Array((server.sqlState + "\0" + server.message).utf8)) }
            throw error
        }
        switch event {
        case .rows(let rows):
            var payload: [UInt8] = []
            payload.appendInteger(UInt32(rows.count))
            for row in rows {
                payload.appendInteger(UInt32(row.count))
                for column in row {
                    if let column { payload.appendInteger(Int32(column.utf8.count)); payload += column.utf8 } else { payload.appendInteger(Int32(-1)) }
                }
            }
            record("T", payload)
        case .copyOut: record("C", [])
        case .copyBoth: record("B", [])
        case .copyIn: record("I", [])
        case .commandOK: record("K", [])
        case nil: record("Z", [])
        }
        return event
    }

    public func readCopyData(wait: Bool, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> CopyRead {
        let read = try inner.readCopyData(wait: wait) { bytes in
            record("D", Array(bytes))
            try body(bytes)
        }
        if read == .copyDone { record("E", []) }
        return read
    }

    private func record(_ kind: Character, _ payload: [UInt8]) {
        var header: [UInt8] = [kind.asciiValue!]
        header.appendInteger(UInt32(payload.count))
        write(header)
        write(payload)
    }

    private func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { _ = fwrite($0.baseAddress, 1, $0.count, file) }
    }
}

/// Plays a recording back, one event per call, as the live connection would have.
public final class RecordedStream: CommandStream {
    private let bytes: [UInt8]
    private var offset: Int
    public let serverVersion: ServerVersion
    public private(set) var sentCommands: [String] = []

    public init(bytes: [UInt8]) throws {
        guard bytes.starts(with: RecordedStreamFormat.magic), bytes.count >= RecordedStreamFormat.magic.count + 4 else {
            throw ConnectionError.lost("not a pgkeep stream recording")
        }
        self.bytes = bytes
        let version = bytes.withUnsafeBytes { raw in
            var cursor = ByteCursor(UnsafeRawBufferPointer(rebasing: raw[RecordedStreamFormat.magic.count...]))
            return cursor.readInteger(as: UInt32.self)!
        }
        offset = RecordedStreamFormat.magic.count + 4
        serverVersion = ServerVersion(number: Int(version))
    }

    public func send(_ text: String) throws { sentCommands.append(text) }
    public func waitForInput(milliseconds: Int32) throws -> Bool { true }

    public func nextResult() throws -> ResultEvent? {
        let (kind, payload) = try nextRecord()
        switch kind {
        case "T":
            return try payload.withUnsafeBytes { raw in
                var cursor = ByteCursor(raw)
                var rows: [[String?]] = []
                for _ in 0..<(cursor.readInteger(as: UInt32.self) ?? 0) {
                    var row: [String?] = []
                    for _ in 0..<(cursor.readInteger(as: UInt32.self) ?? 0) {
                        guard let length = cursor.readInteger(as: Int32.self) else { throw ConnectionError.lost("bad recording") }
                        if length < 0 { row.append(nil); continue }
                        guard let slice = cursor.readSlice(length: Int(length)) else { throw ConnectionError.lost("bad recording") }
                        row.append(String(decoding: slice, as: UTF8.self))
                    }
                    rows.append(row)
                }
                return .rows(rows)
            }
        case "C": return .copyOut
        case "B": return .copyBoth
        case "I": return .copyIn
        case "K": return .commandOK
        case "Z": return nil
        case "X":
            let parts = payload.split(separator: 0, maxSplits: 1).map { String(decoding: $0, as: UTF8.self) }
            throw ConnectionError.server(ServerError(severity: "ERROR", sqlState: parts.first ?? "", message: parts.last ?? ""))
        default: throw ConnectionError.lost("recording has \(kind) where a result was expected")
        }
    }

    public func readCopyData(wait: Bool, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> CopyRead {
        if offset >= bytes.count { throw ConnectionError.lost("recording ends inside a COPY") }
        let (kind, payload) = try nextRecord()
        switch kind {
        case "D":
            try payload.withUnsafeBytes { try body($0) }
            return .message
        case "E": return .copyDone
        default: throw ConnectionError.lost("recording has \(kind) inside a COPY")
        }
    }

    private func nextRecord() throws -> (Character, ArraySlice<UInt8>) {
        let header: (kind: UInt8, length: UInt32)? = bytes.withUnsafeBytes { raw in
            var cursor = ByteCursor(UnsafeRawBufferPointer(rebasing: raw[offset...]))
            guard let kind = cursor.readByte(), let length = cursor.readInteger(as: UInt32.self) else { return nil }
            return (kind, length)
        }
        guard let header, offset + 5 + Int(header.length) <= bytes.count else { throw ConnectionError.lost("recording ends early") }
        let payload = bytes[offset + 5..<offset + 5 + Int(header.length)]
        offset += 5 + Int(header.length)
        return (Character(Unicode.Scalar(header.kind)), payload)
    }
}
