import Testing
import ArchiveStream
import Codecs
import TestSupport

@Suite struct CodecRoundTripTests {
    /// Compressible and incompressible parts, larger than one codec output buffer.
    static let payload: [UInt8] = {
        var random = SplitMix64(seed: 7)
        var bytes = [UInt8](repeating: 0x61, count: 1 << 20)
        bytes += (0..<(1 << 20) + 12345).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        return bytes
    }()

    private func compress(_ spec: CompressionSpec, _ input: [UInt8], split: ChunkSplit = .random) throws -> [UInt8] {
        let output = CollectingStage()
        let compressor = try Codecs.compressor(spec, next: output)
        try split.feed(input) { try compressor.consume($0) }
        try compressor.finish()
        #expect(output.finished)
        return output.bytes
    }

    private func decompress(_ algorithm: CompressionSpec.Algorithm, _ input: [UInt8], split: ChunkSplit = .random) throws -> [UInt8] {
        let output = CollectingStage()
        let decompressor = try Codecs.decompressor(algorithm, next: output)
        try split.feed(input) { try decompressor.consume($0) }
        try decompressor.finish()
        return output.bytes
    }

    @Test("compress then decompress gives the input back", arguments: [
        CompressionSpec(algorithm: .gzip, level: 1), CompressionSpec(algorithm: .lz4), CompressionSpec(algorithm: .zstd, level: 3),
        CompressionSpec(algorithm: .zstd, level: 1, workers: 2),
    ])
    func roundTrip(spec: CompressionSpec) throws {
        let compressed = try compress(spec, Self.payload)
        #expect(compressed.count < Self.payload.count)
        #expect(try decompress(spec.algorithm, compressed) == Self.payload)
        #expect(try decompress(spec.algorithm, compressed, split: .whole) == Self.payload)
    }

    @Test("zstd on workers (1 MiB pieces, a frame each): every size around the pieces round-trips, and the zstd tool reads it",
          arguments: [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 9 * (1 << 20) + 777])
    func pieces(size: Int) throws {
        var random = SplitMix64(seed: UInt64(size) + 1)
        // Every third piece random, the others runs of a byte: pieces that take the workers
        // different times, so they finish out of order.
        let input = (0..<size).map { index in (index >> 20) % 3 == 1 ? UInt8(truncatingIfNeeded: random.next()) : UInt8(truncatingIfNeeded: index / 97) }
        let spec = CompressionSpec(algorithm: .zstd, level: 3, workers: 3)
        let compressed = try compress(spec, input)
        #expect(try decompress(.zstd, compressed) == input)
        #expect(try decompress(.zstd, compressed, split: .whole) == input)
        let scratch = try Fixtures.scratchDirectory("pieces")
        defer { Fixtures.removeScratch(scratch) }
        #expect(FileManager.default.createFile(atPath: scratch + "/data.zst", contents: Data(compressed)))
        try Shell.check(["/usr/bin/zstd", "-d", "-q", scratch + "/data.zst"])
        #expect(FileManager.default.contents(atPath: scratch + "/data") == Data(input))
    }

    /// A stage after the compressor that fails (a full disk): the error comes out of `consume` or
    /// `finish`, and the workers stop (the stage is released with pieces still queued).
    @Test("zstd on workers: a failing next stage's error comes out, and nothing hangs")
    func piecesFailingNext() throws {
        final class FailingStage: ByteStage {
            var calls = 0
            func consume(_ bytes: UnsafeRawBufferPointer) throws {
                calls += 1
                if calls == 2 { throw CodecError.compressionFailed("disk full (test)") }
            }
            func finish() throws {}
        }
        var random = SplitMix64(seed: 3)
        let input = (0..<(12 << 20)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        let failing = FailingStage()
        var compressor: ByteStage? = try Codecs.compressor(CompressionSpec(algorithm: .zstd, level: 1, workers: 2), next: failing)
        #expect(throws: CodecError.self) {
            try ChunkSplit.random.feed(input) { try compressor!.consume($0) }
            try compressor!.finish()
        }
        compressor = nil
        #expect(failing.calls == 2)
    }

    /// WAL segments share one `SegmentCompressor`: a stream given up with pieces still with the
    /// workers must not leak a frame (or a slot's wake-up) into the next stream on the same pool.
    @Test("one stream after another on kept workers; a stream given up midway leaves nothing in the next",
          arguments: [CompressionSpec(algorithm: .zstd), CompressionSpec(algorithm: .zstd, level: 1, workers: 3),
                      CompressionSpec(algorithm: .zstd, workers: 0), CompressionSpec(algorithm: .lz4), CompressionSpec(algorithm: .gzip, level: 1)])
    func segmentsInTurn(spec: CompressionSpec) throws {
        let segments = try SegmentCompressor(spec: spec)
        for round in 0..<4 {
            var random = SplitMix64(seed: UInt64(round) + 11)
            // Random pieces between runs of a round-dependent byte: each round's output is its own.
            let input = (0..<(5 << 20) + round * 4099).map { index in
                (index >> 20) % 2 == 1 ? UInt8(truncatingIfNeeded: random.next()) : UInt8(truncatingIfNeeded: round * 37 + index / 4096)
            }
            if round % 2 == 1 {
                // Given up with several pieces queued and in flight.
                let dropped = CollectingStage()
                try segments.begin(next: dropped)
                try ChunkSplit.random.feed(Array(input.prefix((3 << 20) + 5))) { try segments.consume($0) }
                segments.abandon()
                #expect(!dropped.finished)
            }
            let output = CollectingStage()
            try segments.begin(next: output)
            try ChunkSplit.random.feed(input) { try segments.consume($0) }
            try segments.finish()
            #expect(output.finished)
            #expect(try decompress(spec.algorithm, output.bytes) == input, "round \(round)")
        }
    }

    /// Regression: when the decompressed data ended exactly on a full output buffer (a 16 MiB WAL
    /// segment is 64 of them), the extra pass made to drain it ran with no input and each codec
    /// took that for the start of another frame, so `finish` reported a truncated stream.
    @Test("output ending exactly at the stage's buffer boundary decodes and finishes", arguments: CompressionSpec.Algorithm.allCases)
    func outputOnBufferBoundary(algorithm: CompressionSpec.Algorithm) throws {
        var generator = SplitMix64(seed: 7)
        let payload = (0..<(1 << 20)).map { index in index % 4096 < 2048 ? UInt8(truncatingIfNeeded: generator.next()) : 0 }
        let compressed = try compress(CompressionSpec(algorithm: algorithm), payload)
        for split in [ChunkSplit.whole, .random] {
            #expect(try decompress(algorithm, compressed, split: split) == payload, "\(split)")
        }
    }

    @Test("the system tools read what we write (gzip, lz4, zstd files are standard)", arguments: CompressionSpec.Algorithm.allCases)
    func interoperates(algorithm: CompressionSpec.Algorithm) throws {
        let scratch = try Fixtures.scratchDirectory("codec")
        defer { Fixtures.removeScratch(scratch) }
        let file = scratch + "/data" + algorithm.fileSuffix
        let compressed = try compress(CompressionSpec(algorithm: algorithm), Self.payload)
        #expect(FileManager.default.createFile(atPath: file, contents: Data(compressed)))
        let tool = ["gzip": "/bin/gzip", "lz4": "/usr/bin/lz4", "zstd": "/usr/bin/zstd"][algorithm.rawValue]!
        // lz4 writes to stdout unless told a file name when stdout is not a terminal.
        try Shell.check([tool, "-d", "-q", file] + (algorithm == .lz4 ? [scratch + "/data"] : []))
        #expect(FileManager.default.contents(atPath: scratch + "/data") == Data(Self.payload))
    }

    @Test("a truncated stream is an error at finish", arguments: CompressionSpec.Algorithm.allCases)
    func truncated(algorithm: CompressionSpec.Algorithm) throws {
        let compressed = try compress(CompressionSpec(algorithm: algorithm), Self.payload)
        #expect(throws: CodecError.self) { _ = try decompress(algorithm, Array(compressed.prefix(compressed.count / 2))) }
    }

    @Test("corrupt input is an error", arguments: CompressionSpec.Algorithm.allCases)
    func corrupt(algorithm: CompressionSpec.Algorithm) throws {
        var compressed = try compress(CompressionSpec(algorithm: algorithm), Self.payload)
        for index in stride(from: 0, to: min(64, compressed.count), by: 1) { compressed[index] ^= 0x5A }
        #expect(throws: CodecError.self) { _ = try decompress(algorithm, compressed) }
    }
}

@Suite struct CompressionSpecTests {
    @Test("parses pg_basebackup's syntax", arguments: [
        ("gzip", CompressionSpec(algorithm: .gzip)),
        ("5", CompressionSpec(algorithm: .gzip, level: 5)),
        ("server-lz4", CompressionSpec(algorithm: .lz4, location: .server)),
        ("client-zstd:9", CompressionSpec(algorithm: .zstd, level: 9)),
        ("zstd:level=3,workers=4", CompressionSpec(algorithm: .zstd, level: 3, workers: 4)),
        ("server-zstd:level=5,long", CompressionSpec(algorithm: .zstd, location: .server, level: 5, longDistance: true)),
        ("zstd:long=off", CompressionSpec(algorithm: .zstd, longDistance: false)),
    ])
    func parses(text: String, spec: CompressionSpec) throws { #expect(try CompressionSpec.parse(text) == spec) }

    @Test("none and 0 mean no compression")
    func none() throws {
        #expect(try CompressionSpec.parse("none") == nil)
        #expect(try CompressionSpec.parse("0") == nil)
    }

    @Test("refuses nonsense with a reason, as pg_basebackup does", arguments: [
        "brotli", "gzip:level=99", "lz4:workers=2", "zstd:speed=1", "12", "gzip:x",
        // empty details and items: pg_basebackup says "found empty string where a compression option was expected"
        "server-gzip:", "gzip:", "gzip:level=9,", "zstd:,level=1", "zstd:level=", "gzip:long", "zstd:long=maybe",
    ])
    func refuses(text: String) { #expect(throws: CompressionSpec.ParseError.self) { try CompressionSpec.parse(text) } }

    @Test("zstd long-distance mode round-trips")
    func longDistance() throws {
        let input = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) }
        let collected = CollectingStage()
        let decompressor = try ZstdDecompressor(next: collected)
        let compressor = try ZstdCompressor(level: 3, workers: 0, longDistance: true, next: decompressor)
        try input.withUnsafeBytes { try compressor.consume($0) }
        try compressor.finish()
        #expect(collected.bytes == input)
    }
}

import Foundation
