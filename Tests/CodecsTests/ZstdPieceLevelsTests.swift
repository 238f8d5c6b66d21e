import Testing
import ArchiveStream
import CZstd
@testable import Codecs
import TestSupport

/// How `ParallelZstdCompressor` chooses each piece's level: a named level for every piece; none
/// named, level 3 except on random-looking pieces where level 1 does as well. Each piece's frame
/// is compared byte for byte with libzstd's own at the level expected — libzstd's output is a
/// function of the input and the parameters, so a frame shows which level made it.
@Suite struct ZstdPieceLevelsTests {
    static let piece = 1 << 20

    /// 8 kB pages as a heap table of random values lays them out: a page header, then rows of a
    /// 24-byte tuple header and `row` bytes from `value`, and the page's free space zeroed.
    static func pages(size: Int = piece, row: Int = 1024, seed: UInt64,
                      value: (inout SplitMix64, Int) -> [UInt8] = randomBytes) -> [UInt8] {
        var random = SplitMix64(seed: seed)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size)
        while bytes.count < size {
            var page = [UInt8](repeating: 0, count: 24)
            var rowNumber: UInt8 = 0
            while page.count + 24 + row <= 8192 - 600 {
                page += [0x2a, 0x10, 0, 0, 0, 0, 0, 0, 1, 0, rowNumber, 0, 2, 0, 0x02, 0x09, 0x18, 0, 0, 0, rowNumber, 0, 0, 0]
                page += value(&random, row)
                rowNumber &+= 1
            }
            page += [UInt8](repeating: 0, count: 8192 - page.count)
            bytes += page
        }
        return Array(bytes.prefix(size))
    }

    static func randomBytes(_ random: inout SplitMix64, _ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }

    /// Rows of 32 bytes, each a 16-byte value drawn from `pool` random ones and 16 random bytes:
    /// as varied as random bytes, but with repeats level 3 finds and level 1 mostly misses.
    static func repeatedValues(pool: Int, seed: UInt64) -> [UInt8] {
        var random = SplitMix64(seed: seed)
        let values = (0..<pool).map { _ in randomBytes(&random, 16) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(piece)
        while bytes.count < piece {
            bytes += values[Int(random.next() % UInt64(pool))]
            bytes += randomBytes(&random, 16)
        }
        return Array(bytes.prefix(piece))
    }

    /// pgbench_accounts-like rows: numbers and a blank-padded filler.
    static func accounts(size: Int = piece) -> [UInt8] {
        var text = ""
        var id = 1
        while text.utf8.count < size {
            text += "\(id)\t\(1 + id / 100000)\t0\t" + String(repeating: " ", count: 84) + "\n"
            id += 1
        }
        return Array(text.utf8.prefix(size))
    }

    /// libzstd's frame for `bytes` at `level`, with the pieces' 1 MiB window.
    static func libzstdFrame(_ bytes: [UInt8], level: Int32) -> [UInt8] {
        let context = ZSTD_createCCtx()
        defer { ZSTD_freeCCtx(context) }
        _ = ZSTD_CCtx_setParameter(context, ZSTD_c_windowLog, 20)
        _ = ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
        var output = [UInt8](repeating: 0, count: ZSTD_compressBound(bytes.count))
        let size = output.withUnsafeMutableBytes { out in
            bytes.withUnsafeBytes { ZSTD_compress2(context, out.baseAddress, out.count, $0.baseAddress, $0.count) }
        }
        #expect(ZSTD_isError(size) == 0)
        return Array(output.prefix(size))
    }

    static func compressed(_ input: [UInt8], level: Int?) throws -> [UInt8] {
        let output = CollectingStage()
        let compressor = try ParallelZstdCompressor(level: level, workers: 2, next: output)
        try ChunkSplit.random.feed(input) { try compressor.consume($0) }
        try compressor.finish()
        return output.bytes
    }

    static func looksRandom(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { PieceSample.looksRandom($0) }
    }

    @Test("random-looking: random bytes and pages of random rows; not: tables of text, zeros, a short piece")
    func sampling() {
        var random = SplitMix64(seed: 3)
        // Text-like rows between the same page headers: varied, but far from random.
        let words = Array("lorem ipsum dolor sit amet 0123456789 consectetur adipiscing elit ".utf8)
        let verdicts = [
            "random bytes": Self.looksRandom(Self.randomBytes(&random, Self.piece)),
            "pages of random rows": Self.looksRandom(Self.pages(seed: 4)),
            "random values that repeat": Self.looksRandom(Self.repeatedValues(pool: 500, seed: 5)),
            "accounts-like text rows": Self.looksRandom(Self.accounts()),
            "zeros": Self.looksRandom([UInt8](repeating: 0, count: Self.piece)),
            "pages of word rows": Self.looksRandom(Self.pages(seed: 6) { random, count in
                (0..<count).map { _ in words[Int(random.next() % UInt64(words.count))] }
            }),
            "random bytes, too few to sample": Self.looksRandom(Self.randomBytes(&random, PieceSample.smallestSampled - 1)),
        ]
        #expect(verdicts == [
            "random bytes": true, "pages of random rows": true, "random values that repeat": true,
            "accounts-like text rows": false, "zeros": false, "pages of word rows": false,
            "random bytes, too few to sample": false,
        ])
    }

    @Test("the trial takes level 1 only when its output is within 1 % of the level's")
    func trialMargin() {
        #expect(PieceSample.fastLevelDoesAsWell(fastSize: 1010, levelSize: 1000))
        #expect(!PieceSample.fastLevelDoesAsWell(fastSize: 1011, levelSize: 1000))
        #expect(PieceSample.fastLevelDoesAsWell(fastSize: 900, levelSize: 1000))
        let piece = [UInt8](repeating: 7, count: Self.piece)
        let trial = piece.withUnsafeBytes { bytes in
            let range = PieceSample.trial(of: bytes)
            return (range.baseAddress! - bytes.baseAddress!, range.count)
        }
        #expect(trial.0 == (Self.piece - PieceSample.trialSize) / 2 && trial.1 == PieceSample.trialSize)
    }

    @Test("no level named: level 1 for pages of random rows, level 3 for tables and for random values that repeat; a named level for every piece")
    func levelsChosen() throws {
        let randomRows = Self.pages(seed: 11)
        let repeated = Self.repeatedValues(pool: 500, seed: 12)
        let table = Self.accounts()
        // Where the choice matters, the two levels' frames differ.
        for piece in [randomRows, repeated, table] {
            #expect(Self.libzstdFrame(piece, level: 1) != Self.libzstdFrame(piece, level: 3))
        }
        // Level 3 beats level 1 on the repeats (by 5 %), beyond the trial's 1 %: the trial must see it.
        #expect(Self.libzstdFrame(repeated, level: 3).count * 100 < Self.libzstdFrame(repeated, level: 1).count * 97)

        try Self.expectFrames([(randomRows, 1), (repeated, 3), (table, 3), (randomRows, 1)], level: nil)
        try Self.expectFrames([(randomRows, 3), (repeated, 3), (table, 3)], level: 3)
        try Self.expectFrames([(randomRows, 9)], level: 9)
    }

    /// The pieces compressed with `level` named (or not) come out as libzstd's frames of each
    /// piece at the level paired with it. Compared as sizes and a verdict, not as bytes printed.
    static func expectFrames(_ pieces: [([UInt8], Int32)], level: Int?, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let output = try compressed(pieces.flatMap(\.0), level: level)
        let expected = pieces.map { libzstdFrame($0.0, level: $0.1) }
        let same = output == expected.flatMap { $0 }
        #expect(same, "level \(level.map(String.init) ?? "none named"): \(output.count) bytes, expected frames of \(expected.map(\.count)) at levels \(pieces.map(\.1))",
                sourceLocation: sourceLocation)
    }

    @Test("pieces on one pool keep their own levels: a stream's choices do not carry into the next")
    func segmentsKeepTheirOwn() throws {
        let segments = try SegmentCompressor(spec: CompressionSpec(algorithm: .zstd, workers: 1))
        let randomRows = Self.pages(seed: 21), table = Self.accounts()
        for (input, expected) in [(randomRows, Self.libzstdFrame(randomRows, level: 1)), (table, Self.libzstdFrame(table, level: 3))] {
            let output = CollectingStage()
            try segments.begin(next: output)
            try input.withUnsafeBytes { try segments.consume($0) }
            try segments.finish()
            let same = output.bytes == expected
            #expect(same, "\(output.bytes.count) bytes, expected \(expected.count)")
        }
    }
}
