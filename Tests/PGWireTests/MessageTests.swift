import Testing
import PGWire

@Suite struct MessageTests {
    private func decodeArchive(_ bytes: [UInt8]) throws -> ArchiveStreamMessage {
        try bytes.withUnsafeBytes { try ArchiveStreamMessage.decode($0) }
    }

    @Test("'n' new archive, with and without a tablespace location")
    func newArchive() throws {
        guard case .newArchive(let name, let location) = try decodeArchive(Array("nbase.tar\0\0".utf8)) else { Issue.record(); return }
        #expect(name == "base.tar" && location == nil)
        guard case .newArchive(let name2, let location2) = try decodeArchive(Array("n16385.tar.gz\0/srv/ts\0".utf8)) else { Issue.record(); return }
        #expect(name2 == "16385.tar.gz" && location2 == "/srv/ts")
    }

    @Test("'p' progress is a big-endian int8")
    func progress() throws {
        guard case .progress(let done) = try decodeArchive([UInt8(ascii: "p"), 0, 0, 0, 0, 0, 1, 0, 0]) else { Issue.record(); return }
        #expect(done == 65536)
    }

    @Test("truncated and unknown messages throw, never trap", arguments: [
        [UInt8](), [UInt8(ascii: "n")] + Array("base.tar".utf8), [UInt8(ascii: "p"), 1, 2], [UInt8(ascii: "q")],
    ])
    func malformed(bytes: [UInt8]) { #expect(throws: WireError.self) { _ = try decodeArchive(bytes) } }

    @Test("XLogData and keepalive decode; the WAL bytes are a view of the message")
    func replicationMessages() throws {
        var message: [UInt8] = [UInt8(ascii: "w")]
        message.appendInteger(UInt64(0x100_0000)); message.appendInteger(UInt64(0x200_0000)); message.appendInteger(Int64(5))
        message += [1, 2, 3]
        try message.withUnsafeBytes { raw in
            guard case .xlogData(let start, let end, _, let data) = try ReplicationMessage.decode(raw) else { Issue.record(); return }
            #expect(start == LSN(0x100_0000) && end == LSN(0x200_0000) && Array(data) == [1, 2, 3])
        }
        var keepalive: [UInt8] = [UInt8(ascii: "k")]
        keepalive.appendInteger(UInt64(7)); keepalive.appendInteger(Int64(0)); keepalive.append(1)
        try keepalive.withUnsafeBytes { raw in
            guard case .primaryKeepalive(_, _, let reply) = try ReplicationMessage.decode(raw) else { Issue.record(); return }
            #expect(reply)
        }
    }

    @Test("standby status update is 34 bytes, fields big-endian in order")
    func statusUpdate() {
        let bytes = StandbyStatusUpdate(written: LSN(1), flushed: LSN(2), applied: LSN(3), clock: 4, replyRequested: true).encoded()
        #expect(bytes.count == 34)
        #expect(bytes[0] == UInt8(ascii: "r"))
        #expect(bytes[8] == 1 && bytes[16] == 2 && bytes[24] == 3 && bytes[32] == 4 && bytes[33] == 1)
    }
}
