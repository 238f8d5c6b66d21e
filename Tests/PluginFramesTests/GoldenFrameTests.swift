import Testing
import CBaculaFD
import TestSupport
#if canImport(Glibc)
import Glibc
#endif
@testable import PluginFrames

/// Both sides of the plugin's pipe read and write the same bytes: the golden frames.
@Suite struct GoldenFrameTests {
    static let golden = try! Fixtures.bytes("frames/golden.frames")
    static let lines = String(decoding: try! Fixtures.bytes("frames/golden.txt"), as: UTF8.self).split(separator: "\n").map(String.init)

    static let logical: [Frame] = [
        .file(.init(path: "/@PG/main/data/base/5/1259", size: 8192, mode: 0o600, modificationTime: 1_764_420_000)),
        .data(Array(0...255)),
        .end,
        .file(.init(path: "/@PG/main/wal/000000010000000000000003", size: -1, mode: 0o640, modificationTime: 0)),
        .file(.init(path: "/@PG/main/data/pg_notify", size: 0, mode: 0o700, modificationTime: 1_764_420_001, type: .directory)),
        .seen("/@PG/main/data/PG_VERSION"),
        .message(.warning, "über 100% “quoted”"),
        .message(.fatal, "Can't reach PostgreSQL server to get database config."),
        .done(ok: true),
        .done(ok: false),
    ]

    static func render(_ frame: Frame) -> String {
        switch frame {
        case .file(let header): "file \(header.path) \(header.size) \(header.mode) \(header.modificationTime) \(Character(Unicode.Scalar(header.type.rawValue)))"
        case .data(let bytes): "data \(bytes.count) " + bytes.prefix(8).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        case .end: "end"
        case .seen(let path): "seen \(path)"
        case .message(let severity, let text): "message \(Character(Unicode.Scalar(severity.rawValue))) \(text)"
        case .done(let ok): ok ? "done ok" : "done failed"
        }
    }

    @Test("Swift encodes the golden bytes, and decodes them in any split")
    func swiftSide() throws {
        #expect(Self.logical.flatMap { $0.encoded() } == Self.golden)
        #expect(Self.logical.map(Self.render) == Self.lines)
        for split in [1, 3, 5, 7, 64, Self.golden.count] {
            var buffer = FrameBuffer()
            var decoded: [Frame] = []
            var offset = 0
            while offset < Self.golden.count {
                let end = min(Self.golden.count, offset + split)
                Self.golden[offset..<end].withUnsafeBytes { buffer.append($0) }
                offset = end
                while let frame = try buffer.next() { decoded.append(frame) }
            }
            #expect(decoded == Self.logical, "split every \(split) bytes")
        }
    }

    @Test("lends data frames where they lie, in any split, holding at most one frame and one read")
    func lentData() throws {
        let payloads: [[UInt8]] = [(0..<Frame.maximumPayload).map { UInt8(truncatingIfNeeded: $0 &* 31) }, [7], Array(repeating: 9, count: 70_000)]
        var stream = Frame.file(.init(path: "/@PG/main/data/base/5/1259", size: -1, mode: 0o600, modificationTime: 0)).encoded()
        for payload in payloads { stream += Frame.data(payload).encoded() }
        stream += Frame.end.encoded() + Frame.done(ok: true).encoded()
        for readSize in [1, 4093, 65_536, 300_000] {
            var buffer = FrameBuffer()
            var received: [UInt8] = []
            var frames: [Frame] = []
            var offset = 0
            while offset < stream.count || !buffer.isEmpty {
                while let frame = try buffer.next(data: { received += $0 }) { frames.append(frame) }
                guard offset < stream.count else { break }
                buffer.fill { space in
                    let count = min(space.count, readSize, stream.count - offset)
                    stream[offset..<offset + count].withUnsafeBytes { space.copyMemory(from: $0) }
                    offset += count
                    return count
                }
                #expect(buffer.capacity <= Frame.headerSize + Frame.maximumPayload + FrameBuffer.readSize)
            }
            #expect(received == payloads.flatMap { $0 }, "reads of \(readSize) bytes")
            #expect(frames.map(Self.render) == ["file /@PG/main/data/base/5/1259 -1 384 0 f", "end", "done ok"], "reads of \(readSize) bytes")
        }
        var oversized = FrameBuffer()
        [UInt8(ascii: "D"), 0, 0x10, 0, 1].withUnsafeBytes { oversized.append($0) }
        #expect(throws: FrameError.payloadTooLarge(Frame.maximumPayload + 1)) { _ = try oversized.next(data: { _ in Issue.record("lent a refused frame") }) }
    }

    @Test("refuses what is not a frame")
    func refusals() {
        #expect(throws: FrameError.self) { _ = try [UInt8(ascii: "Q"), 0, 0, 0, 0].withUnsafeBytes { try Frame.decode($0) } }
        #expect(throws: FrameError.self) { _ = try [UInt8(ascii: "D"), 0x7F, 0, 0, 0].withUnsafeBytes { try Frame.decode($0) } }
        #expect(throws: FrameError.self) { _ = try [UInt8(ascii: "Z"), 0, 0, 0, 1, 7].withUnsafeBytes { try Frame.decode($0) } }
        #expect(throws: FrameError.self) { _ = try [UInt8(ascii: "S"), 0, 0, 0, 2, 0, 9].withUnsafeBytes { try Frame.decode($0) } }
    }

    @Test("the C side of pgkeep-fd.so reads the golden frames from a pipe, and encodes a header alike")
    func cSide() throws {
        var pipeFDs: [Int32] = [0, 0]
        #expect(pipe(&pipeFDs) == 0)
        let written = Self.golden.withUnsafeBytes { write(pipeFDs[1], $0.baseAddress, $0.count) }
        #expect(written == Self.golden.count)
        close(pipeFDs[1])
        var reader = pgk_reader(buffer: nil, capacity: 0)
        defer { free(reader.buffer); close(pipeFDs[0]) }
        var rendered: [String] = []
        var frame = pgk_frame()
        while pgk_read_frame(pipeFDs[0], 1000, &reader, &frame) == 1 {
            switch Character(Unicode.Scalar(frame.kind)) {
            case "F":
                var path: UnsafeMutablePointer<CChar>?, size: Int64 = 0, mode: UInt32 = 0, time: Int64 = 0, type: CChar = 0
                #expect(pgk_parse_file(&frame, &path, &size, &mode, &time, &type) == 0)
                rendered.append("file \(String(cString: path!)) \(size) \(mode) \(time) \(Character(Unicode.Scalar(UInt8(type))))")
                free(path)
            case "D":
                let bytes = Array(UnsafeBufferPointer(start: frame.payload, count: Int(frame.length)))
                rendered.append("data \(bytes.count) " + bytes.prefix(8).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined())
            case "E": rendered.append("end")
            case "S":
                var path: UnsafeMutablePointer<CChar>?
                #expect(pgk_parse_string(&frame, &path) == 0)
                rendered.append("seen \(String(cString: path!))")
                free(path)
            case "M":
                var severity: CChar = 0, text: UnsafeMutablePointer<CChar>?
                #expect(pgk_parse_message(&frame, &severity, &text) == 0)
                rendered.append("message \(Character(Unicode.Scalar(UInt8(severity)))) \(String(cString: text!))")
                free(text)
            case "Z":
                var ok: Int32 = 0
                #expect(pgk_parse_done(&frame, &ok) == 0)
                rendered.append(ok == 1 ? "done ok" : "done failed")
            default:
                Issue.record("unexpected kind \(frame.kind)")
            }
        }
        #expect(rendered == Self.lines)
        var payload = [UInt8](repeating: 0, count: 256)
        let length = pgk_encode_file(&payload, payload.count, "/@PG/main/data/base/5/1259", 8192, 0o600, 1_764_420_000, CChar(UInt8(ascii: "f")))
        #expect(Array(payload.prefix(length)) == Array(Self.logical[0].encoded().dropFirst(5)))
    }
}
