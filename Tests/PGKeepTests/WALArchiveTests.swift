import Foundation
import Testing
import ArchiveStream
import Codecs
import PGWire
import TestSupport
@testable import WAL

/// The archive directory's own rules, on a scratch directory: names, resume points, leftovers of
/// a crash, identity, the lock, and what a completed segment becomes.
@Suite struct WALArchiveTests {
    static let size = WALSegmentSize(bytes: 1 << 20)!

    @Test func parsesSegmentAndHistoryNames() {
        #expect(WALFileName("000000020000000100000003", segmentSize: .init(bytes: 16 << 20)!)
                == .segment(timeline: TimelineID(2), segment: 0x100 + 3, partial: false, compression: nil))
        #expect(WALFileName("0000000200000001000000FF.partial", segmentSize: Self.size)
                == .segment(timeline: TimelineID(2), segment: 0x1000 + 0xFF, partial: true, compression: nil))
        #expect(WALFileName("000000010000000000000001.zst", segmentSize: Self.size)
                == .segment(timeline: TimelineID(1), segment: 1, partial: false, compression: "zst"))
        #expect(WALFileName("0000000A.history", segmentSize: Self.size) == .history(TimelineID(10)))
        for bad in ["000000010000000000000001.partial.zst", "00000001000000000000000g", "000000000000000000000001",
                    "000000010000000000000100", "pgkeep.archive", "000000010000000000000001.tmp", "0000000A.history.tmp"] {
            // 0x100 is past the last 1 MiB segment of a 4 GiB block (0xFFF is the last).
            if bad == "000000010000000000000100" { #expect(WALFileName(bad, segmentSize: .init(bytes: 16 << 20)!) == nil); continue }
            #expect(WALFileName(bad, segmentSize: Self.size) == nil, "\(bad)")
        }
        #expect(WALFileName.historyFileName(TimelineID(26)) == "0000001A.history")
    }

    @Test func timelineHistoryPlacesPositionsOnTheRightTimeline() throws {
        let history = try TimelineHistory(current: TimelineID(3), content: """
            1\t0/3000000\tno recovery target specified

            # a comment
            2\t0/5000A28\tat restore point "x"
            """)
        #expect(history.timeline(containing: LSN(0x2FFFFFF)) == TimelineID(1))
        #expect(history.timeline(containing: LSN(0x3000000)) == TimelineID(2), "a switchpoint belongs to the new timeline")
        #expect(history.timeline(containing: LSN(0x5000A28)) == TimelineID(3))
        #expect(history.end(of: TimelineID(2)) == LSN(0x5000A28))
        #expect(history.includes(TimelineID(1)) && !history.includes(TimelineID(4)))
        #expect(throws: WALStreamError.self) { try TimelineHistory(current: TimelineID(2), content: "1\tnot-an-lsn\n") }
        #expect(throws: WALStreamError.self) { try TimelineHistory(current: TimelineID(2), content: "2\t0/3000000\n") }
    }

    @Test func resumesAfterTheNewestSegmentAndClearsLeftoversOfACrash() throws {
        let path = try Fixtures.scratchDirectory("wal-archive-resume")
        defer { Fixtures.removeScratch(path) }
        let archive = try WALArchiveDirectory(path: path)
        #expect(try archive.resumePoint(segmentSize: Self.size) == nil)
        for name in ["000000010000000000000001", "000000010000000000000002.zst",
                     "000000010000000000000003.partial", "000000020000000000000003.partial",
                     "000000010000000000000002.partial",      // compressed copy made, partial not yet removed
                     "000000010000000000000003.lz4.tmp",      // compression interrupted
                     "00000002.history", "unrelated.txt"] {
            #expect(FileManager.default.createFile(atPath: path + "/" + name, contents: Data()))
        }
        let resume = try #require(try archive.resumePoint(segmentSize: Self.size))
        // The newest segment is 3; timeline 2's copy wins over timeline 1's; partial: stream it again.
        #expect(resume == .init(timeline: TimelineID(2), start: LSN(3 << 20), basedOn: "000000020000000000000003.partial"))
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: path))
        #expect(!left.contains("000000010000000000000002.partial") && !left.contains("000000010000000000000003.lz4.tmp"))
        #expect(left.contains("000000010000000000000003.partial"), "an old timeline's last partial segment is kept")
        #expect(left.contains("unrelated.txt"))

        #expect(FileManager.default.createFile(atPath: path + "/000000020000000000000003", contents: Data()))
        #expect(try archive.resumePoint(segmentSize: Self.size)?.start == LSN(4 << 20), "complete: resume after it")
    }

    @Test func refusesAnotherClusterAndASecondArchiver() throws {
        let path = try Fixtures.scratchDirectory("wal-archive-identity")
        defer { Fixtures.removeScratch(path) }
        let archive = try WALArchiveDirectory(path: path)
        try archive.lock()
        #expect(throws: WALArchiveDirectory.Locked.self) { try WALArchiveDirectory(path: path).lock() }
        try archive.checkIdentity(.init(systemIdentifier: "7000000000000000001", segmentSize: Self.size), sync: false)
        try archive.checkIdentity(.init(systemIdentifier: "7000000000000000001", segmentSize: Self.size), sync: false)
        let other = #expect(throws: WALArchiveDirectory.IdentityMismatch.self) {
            try archive.checkIdentity(.init(systemIdentifier: "7000000000000000002", segmentSize: Self.size), sync: false)
        }
        #expect(other?.description.contains("7000000000000000001") == true)
        #expect(throws: WALArchiveDirectory.IdentityMismatch.self) {
            try archive.checkIdentity(.init(systemIdentifier: "7000000000000000001", segmentSize: .init(bytes: 16 << 20)!), sync: false)
        }
    }

    /// Writes as they arrive: in order from the segment's start (compressed as they come), a
    /// restart's second pass over a segment left partial, or out of order (the compressed copy is
    /// given up and the completed partial read back).
    enum Arrival: CaseIterable { case inOrder, afterRestart, outOfOrder }

    @Test(arguments: [nil, "zstd", "zstd:workers=0", "lz4", "gzip:1"], Arrival.allCases)
    func completedSegmentsGetTheirFinalNameAndPartialOnesStayPartial(_ compression: String?, _ arrival: Arrival) throws {
        let path = try Fixtures.scratchDirectory("wal-archive-writer")
        defer { Fixtures.removeScratch(path) }
        let spec = try compression.flatMap { try CompressionSpec.parse($0) }
        var completed: [String] = []
        func newWriter() -> WALArchiveWriter {
            WALArchiveWriter(directory: path, segmentSize: Self.size, compression: spec, sync: true) { completed.append($0.fileName) }
        }
        var writer = newWriter()
        var generator = SplitMix64(seed: 42)
        let content = (0..<(1 << 20)).map { index in index % 4096 < 2048 ? UInt8(truncatingIfNeeded: generator.next()) : 0 }
        if arrival == .afterRestart {
            try writer.openSegment(named: "000000010000000000000001")
            try content.withUnsafeBytes { try writer.write(UnsafeRawBufferPointer(rebasing: $0[0..<700_000]), at: 0) }
            try writer.finish()
            #expect(Set(try FileManager.default.contentsOfDirectory(atPath: path)) == ["000000010000000000000001.partial"],
                    "a stopped segment leaves its partial only")
            writer = newWriter()
        }
        try writer.openSegment(named: "000000010000000000000001")
        try content.withUnsafeBytes { bytes in
            if arrival == .outOfOrder {
                try writer.write(UnsafeRawBufferPointer(rebasing: bytes[300_000...]), at: 300_000)
                try writer.write(UnsafeRawBufferPointer(rebasing: bytes[0..<300_000]), at: 0)
            } else {
                try writer.write(UnsafeRawBufferPointer(rebasing: bytes[0..<300_000]), at: 0)
                try writer.write(UnsafeRawBufferPointer(rebasing: bytes[300_000...]), at: 300_000)
            }
        }
        try writer.closeSegment(complete: true)
        try writer.openSegment(named: "000000010000000000000002")
        try [UInt8](repeating: 9, count: 100).withUnsafeBytes { try writer.write($0, at: 0) }
        try writer.finish()

        let suffix = spec?.algorithm.fileSuffix ?? ""
        #expect(completed == ["000000010000000000000001" + suffix])
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: path))
                == ["000000010000000000000001" + suffix, "000000010000000000000002.partial"])
        var stored = [UInt8](FileManager.default.contents(atPath: path + "/000000010000000000000001" + suffix) ?? Data())
        if let spec {
            let collected = CollectingStage()
            let decompressor = try Codecs.decompressor(spec.algorithm, next: collected)
            try ChunkSplit.random.feed(stored) { try decompressor.consume($0) }
            try decompressor.finish()
            stored = collected.bytes
        }
        #expect(stored == content)
        let partial = [UInt8](FileManager.default.contents(atPath: path + "/000000010000000000000002.partial") ?? Data())
        #expect(partial.count == 1 << 20 && partial.prefix(100).allSatisfy { $0 == 9 } && partial.dropFirst(100).allSatisfy { $0 == 0 },
                "a partial segment is full size, zero past what arrived")
    }
}
