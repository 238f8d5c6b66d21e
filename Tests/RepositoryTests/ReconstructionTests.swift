import Testing
import Foundation
@testable import Repository
import PGWire

/// The INCREMENTAL file format and pg_combinebackup's block choice, byte by byte.
@Suite struct ReconstructionTests {
    static func header(blocks: [UInt32], truncation: UInt32, magic: UInt32 = IncrementalFileHeader.magic) -> [UInt8] {
        var bytes: [UInt8] = []
        for value in [magic, UInt32(blocks.count), truncation] + blocks { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        return bytes
    }

    @Test("the header: magic, count, truncation length, sorted blocks, padding to a block boundary")
    func header() throws {
        let parsed = try #require(try IncrementalFileHeader.decode(Self.header(blocks: [2, 7], truncation: 9), blockSize: 8192, path: "x"))
        #expect(parsed.blockNumbers == [2, 7] && parsed.truncationBlockLength == 9 && parsed.headerSize == 8192)
        #expect(parsed.fileSize(blockSize: 8192) == 3 * 8192)
        let empty = try #require(try IncrementalFileHeader.decode(Self.header(blocks: [], truncation: 4), blockSize: 8192, path: "x"))
        #expect(empty.headerSize == 12 && empty.fileSize(blockSize: 8192) == 12, "no blocks: exactly 12 bytes")
        #expect(try IncrementalFileHeader.decode(Self.header(blocks: [1], truncation: 2).prefix(13), blockSize: 8192, path: "x") == nil, "asks for more")
        #expect(throws: IncrementalFileHeader.Invalid.self) { _ = try IncrementalFileHeader.decode(Self.header(blocks: [], truncation: 0, magic: 1), blockSize: 8192, path: "x") }
        #expect(throws: IncrementalFileHeader.Invalid.self) { _ = try IncrementalFileHeader.decode(Self.header(blocks: [5, 3], truncation: 9), blockSize: 8192, path: "x") }
        #expect(throws: IncrementalFileHeader.Invalid.self) { _ = try IncrementalFileHeader.decode(Self.header(blocks: [], truncation: 131_073), blockSize: 8192, path: "x") }
    }

    @Test("each block from the incremental file, else the full below the truncation length, else zeros")
    func plan() throws {
        let header = try #require(try IncrementalFileHeader.decode(Self.header(blocks: [1, 5], truncation: 4), blockSize: 8192, path: "x"))
        #expect(header.reconstructedBlocks == 6, "the highest block held outlasts the truncation length")
        #expect(reconstructionPlan(header, fullFileBlocks: 3) == [.full(0), .incremental(0), .full(2), .zeros, .zeros, .incremental(1)])
        let shrunk = try #require(try IncrementalFileHeader.decode(Self.header(blocks: [], truncation: 2), blockSize: 8192, path: "x"))
        #expect(reconstructionPlan(shrunk, fullFileBlocks: 10) == [.full(0), .full(1)], "a truncated relation ends at its truncation length")
    }

    @Test("which files are relation files, and which take page deltas")
    func relationFiles() {
        for path in ["base/5/16384", "base/5/16384.2", "global/1262", "base/5/16384_vm", "pg_tblspc/16390/PG_17_202406281/5/16400_init"] {
            #expect(RelationFile.isIncrementalCandidate(path), "\(path)")
        }
        for path in ["base/5/16384_fsm", "base/5/PG_VERSION", "pg_xact/0000", "base/5/pg_filenode.map", "base/5/16384.x", "global/pg_control"] {
            #expect(!RelationFile.isIncrementalCandidate(path), "\(path)")
        }
        #expect(RelationFile.isPageDeltaCandidate("base/5/16384.1"))
        #expect(!RelationFile.isPageDeltaCandidate("base/5/16384_vm"), "visibility map bits clear without its page LSN moving")
    }

    @Test("a page changed since the full: past its length always; by the block map's CRC where it has one; else by LSN")
    func pageChange() throws {
        func page(lsn: UInt64, fill: UInt8 = 0) -> [UInt8] {
            var bytes = [UInt8](repeating: fill, count: 8192)
            withUnsafeBytes(of: UInt32(lsn >> 32).littleEndian) { bytes.replaceSubrange(0..<4, with: $0) }
            withUnsafeBytes(of: UInt32(lsn & 0xFFFF_FFFF).littleEndian) { bytes.replaceSubrange(4..<8, with: $0) }
            return bytes
        }
        let since = try #require(LSN("1/2000000"))
        let old = page(lsn: 0x1_0100_0000), new = page(lsn: 0x1_0200_0000), hinted = page(lsn: 0x1_0100_0000, fill: 1)
        let byLSN = PageChangeRule(since: since, baseBlocks: 10, baseMap: nil)
        #expect(!old.withUnsafeBytes { byLSN.changed($0, block: 3) }, "older than the full's start")
        #expect(new.withUnsafeBytes { byLSN.changed($0, block: 3) }, "at the full's start")
        #expect(!hinted.withUnsafeBytes { byLSN.changed($0, block: 3) }, "without a map, a change that kept the LSN is missed")
        #expect(old.withUnsafeBytes { byLSN.changed($0, block: 10) }, "past the full's length")
        let map = [UInt32](repeating: 0, count: 4) + [old.withUnsafeBytes { BlockMap.crc($0) }]
        let byMap = PageChangeRule(since: since, baseBlocks: 10, baseMap: map)
        #expect(!old.withUnsafeBytes { byMap.changed($0, block: 4) }, "the same bytes as the full's")
        #expect(hinted.withUnsafeBytes { byMap.changed($0, block: 4) }, "other bytes, the same LSN: caught by the map")
        #expect(new.withUnsafeBytes { byMap.changed($0, block: 5) }, "beyond the map, the LSN decides")
        #expect(!old.withUnsafeBytes { byMap.changed($0, block: 5) })
    }

    @Test("expire keeps the newest fulls and what depends on them; WAL from the oldest kept full's start")
    func expire() {
        func record(_ id: String, _ level: BackupRecord.Level, parent: String? = nil, start: String) -> BackupRecord {
            var record = LevelPlanTests.record(id, level: level)
            record.parent = parent
            record.startLSN = start
            return record
        }
        let catalog = Catalog(records: [record("1F", .full, start: "0/1000028"), record("2I", .incremental, start: "0/2000000"),
                                        record("3D", .differential, parent: "1F", start: "0/3000028"), record("4F", .full, start: "0/4000028"),
                                        record("5D", .differential, parent: "4F", start: "0/5000028")])
        let plan = ExpirePlan.make(catalog, rule: .keepFull(1), now: 0) { _ in 0 }
        #expect(plan.removals.map(\.id) == ["1F", "2I", "3D"] && plan.kept == ["4F", "5D"])
        #expect(plan.walBefore?.description == "0/4000028")
        #expect(ExpirePlan.make(catalog, rule: .keepFull(2), now: 0) { _ in 0 }.removals.isEmpty)
        // keep-days: the newest full finished before the cutoff stays, as the window's start.
        let days = ExpirePlan.make(catalog, rule: .keepDays(1), now: 10 * 86_400) { record in
            ["1F": 1.0, "2I": 2, "3D": 3, "4F": 8.5, "5D": 9.5][record.id]! * 86_400
        }
        #expect(days.kept == ["4F", "5D"])
    }
}

@Suite struct IncrementalVisibilityMapTests {
    @Test("server versions whose summaries hold cleared visibility-map bits", arguments: [
        ("17.10", false), ("17.0", false), ("18.5", false), ("18.6", true), ("18.10", true), ("19beta1", true), ("19.0", true),
    ])
    func trusted(version: String, trusted: Bool) {
        #expect(IncrementalVisibilityMap.isTrusted(serverVersion: version) == trusted)
    }

    @Test("visibility-map forks, and only them")
    func forks() {
        #expect(IncrementalVisibilityMap.isVisibilityMap("base/5/16396_vm"))
        #expect(IncrementalVisibilityMap.isVisibilityMap("pg_tblspc/16500/PG_17_202406281/5/16396_vm.1"))
        #expect(!IncrementalVisibilityMap.isVisibilityMap("base/5/16396"))
        #expect(!IncrementalVisibilityMap.isVisibilityMap("base/5/16396_fsm"))
    }
}

@Suite struct ConsistencyTimeTests {
    @Test("consistency times keep milliseconds, rounded up; whole-second times from older records still read")
    func roundTrip() throws {
        let text = Repository.timestampRoundedUp(Date(timeIntervalSince1970: 1_764_420_000.1231))
        #expect(text == "2025-11-29T12:40:00.124Z")
        #expect(Repository.date(text)!.timeIntervalSince1970 == 1_764_420_000.124)
        #expect(Repository.date("2025-11-29T12:40:00Z")!.timeIntervalSince1970 == 1_764_420_000)
    }
}
