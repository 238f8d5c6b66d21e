import Testing
import ArchiveStream
import TestSupport

@Suite struct TarParserTests {
    /// A small archive like a server's: "./"-prefixed directory, empty file, files crossing block edges.
    static func sampleArchive(terminated: Bool = true) -> [UInt8] {
        var tar = TarBuilder()
        tar.directory("./pg_wal/archive_status")
        tar.file("PG_VERSION", Array("17\n".utf8))
        tar.file("global/pg_control", [UInt8](repeating: 0xAB, count: 8192))
        tar.file("empty", [])
        tar.file("odd", [UInt8]((0..<1013).map { UInt8(truncatingIfNeeded: $0) }))
        tar.symlink("pg_tblspc/16385", target: "/srv/ts")
        if terminated { tar.end() }
        return tar.bytes
    }

    private func parse(_ bytes: [UInt8], split: ChunkSplit = .whole, requiresTerminator: Bool = true) throws -> RecordingMemberConsumer {
        let recorder = RecordingMemberConsumer()
        let parser = TarParser(next: recorder, requiresTerminator: requiresTerminator)
        try split.feed(bytes) { try parser.consume($0) }
        try parser.finish()
        return recorder
    }

    @Test("every split of the input gives the same members", arguments: ChunkSplit.allCases)
    func splits(split: ChunkSplit) throws {
        let whole = try parse(Self.sampleArchive())
        let pieces = try parse(Self.sampleArchive(), split: split)
        #expect(pieces.entries == whole.entries)
        #expect(whole.entries.map(\.path) == ["pg_wal/archive_status", "PG_VERSION", "global/pg_control", "empty", "odd", "pg_tblspc/16385"])
        #expect(whole.entries[4].contents.count == 1013)
        #expect(whole.entries[5].kind == .symlink(target: Array("/srv/ts".utf8)))
        #expect(pieces.ended)
    }

    @Test("14 sends no end blocks: accepted only when the terminator is not required")
    func unterminated() throws {
        let bytes = Self.sampleArchive(terminated: false)
        #expect(try parse(bytes, requiresTerminator: false).entries.count == 6)
        #expect(throws: TarError.self) { try parse(bytes, requiresTerminator: true) }
    }

    @Test("a stream cut anywhere inside a member, header or padding is an error", arguments: [100, 600, 1030, 1500, 9000, 9728 + 3])
    func truncated(at length: Int) throws {
        let bytes = Array(Self.sampleArchive(terminated: false).prefix(length))
        #expect(throws: TarError.self) { try parse(bytes, split: .random, requiresTerminator: false) }
    }

    @Test("garbage after the end, a lone zero block, a bad checksum, pax headers: refused")
    func malformed() throws {
        var garbage = Self.sampleArchive()
        garbage += [1] + [UInt8](repeating: 0, count: 511)
        #expect(throws: TarError.self) { try parse(garbage) }

        var lone = TarBuilder()
        lone.file("a", [1])
        lone.bytes += [UInt8](repeating: 0, count: 512)
        lone.file("b", [2])
        lone.end()
        #expect(throws: TarError.self) { try parse(lone.bytes) }

        var corrupt = Self.sampleArchive()
        corrupt[3] ^= 0x01
        #expect(throws: TarError.badChecksum(offset: 0)) { try parse(corrupt) }

        var pax = TarBuilder()
        pax.raw(typeflag: "x", path: "PaxHeader")
        pax.end()
        #expect(throws: TarError.self) { try parse(pax.bytes) }
    }

    @Test("zero padding after the end blocks (a tar record) is accepted")
    func recordPadding() throws {
        let bytes = Self.sampleArchive() + [UInt8](repeating: 0, count: 8192)
        #expect(try parse(bytes).entries.count == 6)
    }

    @Test("a member of 8 GiB and more (base-256 size) streams through in constant memory")
    func hugeMember() throws {
        let size: UInt64 = (8 << 30) + 1
        var tar = TarBuilder()
        tar.header(path: "base/1/huge", typeflag: "0", size: size, mode: 0o600)
        let counter = CountingConsumer()
        let parser = TarParser(next: counter)
        try tar.bytes.withUnsafeBytes { try parser.consume($0) }
        let chunk = [UInt8](repeating: 0, count: 4 << 20)
        var remaining = size
        try chunk.withUnsafeBytes { raw in
            while remaining > 0 {
                let take = Int(min(remaining, UInt64(raw.count)))
                try parser.consume(UnsafeRawBufferPointer(rebasing: raw[0..<take]))
                remaining -= UInt64(take)
            }
        }
        try [UInt8](repeating: 0, count: 511 + 1024).withUnsafeBytes { try parser.consume($0) }
        try parser.finish()
        #expect(counter.sizes == [size])
        #expect(counter.contentBytes == size)
    }

    @Test("headers written by TarHeader.encode read back the same, including base-256 sizes")
    func headerRoundTrip() throws {
        for size: UInt64 in [0, 1, 0o77777777777, 0o77777777777 + 1, 1 << 40] {
            let member = TarMember(path: try ArchivePath(validating: "base/16384/2619"), kind: .file, size: size, mode: 0o600,
                                   modificationTime: 1_700_000_000)
            var block = [UInt8](repeating: 0, count: 512)
            block.withUnsafeMutableBytes { TarHeader.encode(member, into: $0) }
            #expect(try block.withUnsafeBytes { try TarHeader.decode($0, offset: 0) } == member)
        }
    }

    @Test("the archiver re-emits what the parser read, terminating a 14-style archive")
    func archiverRoundTrip() throws {
        let output = CollectingStage()
        let parser = TarParser(next: TarArchiver(next: output), requiresTerminator: false)
        try Self.sampleArchive(terminated: false).withUnsafeBytes { try parser.consume($0) }
        try parser.finish()
        #expect(output.bytes == Self.sampleArchive(terminated: true))
        #expect(output.finished)
    }
}

@Suite struct ArchivePathTests {
    @Test("normalises ./ prefixes, empty and . components, trailing slashes",
          arguments: [("./pg_wal/", "pg_wal"), ("base//1/./2", "base/1/2"), ("././x", "x")])
    func normalises(raw: String, normal: String) throws { #expect(try ArchivePath(validating: raw).description == normal) }

    @Test("refuses absolute, '..' and empty paths", arguments: ["/etc/passwd", "..", "a/../b", "a/..", "", "./", "//x"])
    func refuses(raw: String) { #expect(throws: TarError.self) { try ArchivePath(validating: raw) } }

    @Test("keeps non-UTF-8 names byte for byte")
    func rawBytes() throws {
        let raw: [UInt8] = [0x66, 0xFF, 0x66]
        #expect(try ArchivePath(validating: raw).bytes == raw)
    }
}

@Suite struct RecoveryConfigInjectorTests {
    @Test("appends to postgresql.auto.conf and adds standby.signal")
    func injects() throws {
        var tar = TarBuilder()
        tar.file("postgresql.auto.conf", Array("work_mem = '4MB'\n".utf8))
        tar.file("PG_VERSION", Array("17\n".utf8))
        tar.end()
        let recorder = RecordingMemberConsumer()
        let parser = TarParser(next: RecoveryConfigInjector(next: recorder, settings: "primary_conninfo = 'x'\n"))
        try tar.bytes.withUnsafeBytes { try parser.consume($0) }
        try parser.finish()
        #expect(recorder.entries.map(\.path) == ["postgresql.auto.conf", "PG_VERSION", "standby.signal"])
        #expect(String(decoding: recorder.entries[0].contents, as: UTF8.self) == "work_mem = '4MB'\nprimary_conninfo = 'x'\n")
        #expect(recorder.entries[0].size == UInt64(recorder.entries[0].contents.count))
    }
}

/// Counts without keeping contents (for the 8 GiB member).
final class CountingConsumer: TarMemberConsumer {
    var sizes: [UInt64] = []
    var contentBytes: UInt64 = 0
    func beginMember(_ member: TarMember, rawHeader: UnsafeRawBufferPointer?) throws { sizes.append(member.size) }
    func memberContents(_ bytes: UnsafeRawBufferPointer) throws { contentBytes += UInt64(bytes.count) }
    func endMember() throws {}
    func endArchive() throws {}
}
