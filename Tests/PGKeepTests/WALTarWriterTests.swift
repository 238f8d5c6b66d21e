import Testing
import ArchiveStream
import PGWire
import Sinks
import TestSupport
import WAL

/// pg_wal.tar as a backup's WAL thread writes it (`WALTarWriter`): full segments, the unreceived
/// tail of the last one zeros, written from `ZeroBytes`.
@Suite struct WALTarWriterTests {
    @Test("a segment left partial is completed with zeros to its full size; complete ones are marked done")
    func partialSegmentEndsInZeros() throws {
        let size = try #require(WALSegmentSize(bytes: 1 << 20))
        let output = CollectingStage()
        let writer = WALTarWriter(output: output, segmentSize: size)
        // Not a multiple of the zeros' 64 kB, nor of a tar block: the padding's last piece is partial.
        let first = (0..<Int(size.bytes)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
        let received = (0..<300_001).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
        try writer.openSegment(named: "000000010000000000000001")
        try first.withUnsafeBytes { try writer.write($0, at: 0) }
        try writer.closeSegment(complete: true)
        try writer.openSegment(named: "000000010000000000000002")
        try received.withUnsafeBytes { try writer.write(UnsafeRawBufferPointer(rebasing: $0[0..<100_000]), at: 0) }
        try received.withUnsafeBytes { try writer.write(UnsafeRawBufferPointer(rebasing: $0[100_000...]), at: 100_000) }
        try writer.finish()

        let members = RecordingMemberConsumer()
        let parser = TarParser(next: members)
        try output.bytes.withUnsafeBytes { try parser.consume($0) }
        try parser.finish()
        #expect(members.entries.map(\.path) == ["000000010000000000000001", "000000010000000000000002",
                                                "archive_status/000000010000000000000001.done"])
        #expect(members.entries[0].contents == first)
        let second = members.entries[1].contents
        #expect(second.count == Int(size.bytes))
        #expect(Array(second[..<received.count]) == received)
        #expect(second[received.count...].allSatisfy { $0 == 0 })
    }

    @Test("ZeroBytes reads as zeros, and hands out a total in pieces of its size")
    func zeroBytes() {
        let zeros = ZeroBytes(count: 64 << 10)
        #expect(zeros.bytes.count == 64 << 10)
        #expect(zeros.bytes.allSatisfy { $0 == 0 })
        var pieces: [Int] = []
        zeros.write(150_001) { piece in
            #expect(piece.allSatisfy { $0 == 0 })
            pieces.append(piece.count)
        }
        #expect(pieces == [65_536, 65_536, 18_929])
        zeros.write(0) { _ in Issue.record("nothing to write") }
    }
}
