import Foundation
import Testing
import ArchiveStream
import Codecs
import PGConnection
import TestSupport
@testable import PGKeep

/// Streams recorded from real servers, replayed through the real driver, router and sinks:
/// every file the server's manifest lists must come out with its size and CRC-32C.
@Suite("recorded BASE_BACKUP streams replay to the server's manifest")
struct RecordedStreamReplayTests {
    static let recordings: [(file: String, tablespace: String, compression: String?)] = [
        ("pg14-plain.stream.zst", "/tmp/rec/ts14", nil),
        ("pg17-server-gzip.stream", "/tmp/rec/ts17", "server-gzip"),
    ]

    @Test("plain extraction matches the manifest file for file", arguments: recordings)
    func plainExtraction(file: String, tablespace: String, compression: String?) throws {
        let scratch = try Fixtures.scratchDirectory("replay")
        defer { Fixtures.removeScratch(scratch) }
        let target = scratch + "/backup", relocated = scratch + "/ts"
        let positions = try replay(try loadRecording(file), into: target,
                                   compression: try compression.flatMap { try CompressionSpec.parse($0) },
                                   mappings: ["\(tablespace)=\(relocated)"])
        #expect(positions.start < positions.end)

        let manifest = try manifestFiles(target + "/" + ArchiveRouter.manifestTemporaryName)
        #expect(manifest.count > 900)
        var checked = 0
        for (path, expected) in manifest {
            let contents = try #require(FileManager.default.contents(atPath: target + "/" + path), "missing \(path)")
            #expect(contents.count == expected.size, "\(path)")
            if let checksum = expected.checksum { #expect(crc32cHex([UInt8](contents)) == checksum, "\(path)") }
            checked += 1
        }
        #expect(checked == manifest.count)
        // The tablespace link points where the mapping said, and the odd table name arrived.
        let links = try FileManager.default.contentsOfDirectory(atPath: target + "/pg_tblspc")
        #expect(try links.map { try FileManager.default.destinationOfSymbolicLink(atPath: target + "/pg_tblspc/" + $0) } == [relocated])
    }

    @Test("tar output of a recording re-reads to the same members", arguments: recordings)
    func tarOutput(file: String, tablespace: String, compression: String?) throws {
        let scratch = try Fixtures.scratchDirectory("replay-tar")
        defer { Fixtures.removeScratch(scratch) }
        let target = scratch + "/backup"
        let spec = try compression.flatMap { try CompressionSpec.parse($0) } ?? CompressionSpec(algorithm: .lz4)
        _ = try replay(try loadRecording(file), into: target, format: .tar, compression: spec)
        let manifest = try manifestFiles(target + "/" + ArchiveRouter.manifestTemporaryName)

        var members: [String: Int] = [:]
        for archive in try FileManager.default.contentsOfDirectory(atPath: target) where archive.contains(".tar") {
            let recorder = RecordingMemberConsumer()
            let parser = TarParser(next: recorder)
            let decompressor = try Codecs.decompressor(spec.algorithm, next: parser)
            let bytes = [UInt8](FileManager.default.contents(atPath: target + "/" + archive)!)
            try bytes.withUnsafeBytes { try decompressor.consume($0) }
            try decompressor.finish() // the archive must be whole, end blocks included (14 sends none)
            #expect(recorder.ended)
            let prefix = archive.hasPrefix("base.") ? "" : "pg_tblspc/" + archive.prefix { $0 != "." } + "/"
            for entry in recorder.entries where entry.kind == .file { members[prefix + entry.path] = entry.contents.count }
        }
        for (path, expected) in manifest { #expect(members[path] == expected.size, "\(path)") }
    }

    @Test("a recording cut short fails; nothing is marked complete")
    func truncatedRecording() throws {
        var bytes = try Fixtures.bytes("streams/pg17-server-gzip.stream")
        bytes.removeLast(bytes.count / 2)
        let scratch = try Fixtures.scratchDirectory("replay-cut")
        defer { Fixtures.removeScratch(scratch) }
        #expect(throws: (any Error).self) {
            _ = try replay(try RecordedStream(bytes: bytes), into: scratch + "/backup",
                           compression: CompressionSpec(algorithm: .gzip, location: .server), mappings: ["/tmp/rec/ts17=\(scratch)/ts"])
        }
        #expect(!FileManager.default.fileExists(atPath: scratch + "/backup/" + ArchiveRouter.manifestName))
    }
}
