import Foundation
import Testing
import ArchiveStream
@testable import Sinks
import TestSupport

@Suite struct DirectoryExtractorTests {
    private func extract(_ tar: TarBuilder, into root: String,
                         linkPolicy: @escaping DirectoryExtractor.LinkPolicy = { _, target in target }) throws -> DirectoryExtractor {
        let extractor = try DirectoryExtractor(root: root, linkPolicy: linkPolicy)
        let parser = TarParser(next: extractor)
        try ChunkSplit.random.feed(tar.bytes) { try parser.consume($0) }
        try parser.finish()
        return extractor
    }

    @Test("writes files and directories with PostgreSQL's modes")
    func extracts() throws {
        let scratch = try Fixtures.scratchDirectory("extract")
        defer { Fixtures.removeScratch(scratch) }
        var tar = TarBuilder()
        tar.directory("base")
        tar.file("base/1", [UInt8](repeating: 3, count: 70_000))
        tar.file("deep/er/file", [1, 2]) // parents not listed first: created
        tar.end()
        let extractor = try extract(tar, into: scratch)
        #expect(extractor.filesWritten == 2)
        #expect(FileManager.default.contents(atPath: scratch + "/base/1") == Data(repeating: 3, count: 70_000))
        let mode = try FileManager.default.attributesOfItem(atPath: scratch + "/base/1")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let directoryMode = try FileManager.default.attributesOfItem(atPath: scratch + "/base")[.posixPermissions] as? Int
        #expect(directoryMode == 0o700)
    }

    @Test("a member under a symlink the archive made is refused, and nothing is written through it")
    func symlinkThenFile() throws {
        let scratch = try Fixtures.scratchDirectory("extract-link")
        defer { Fixtures.removeScratch(scratch) }
        let outside = scratch + "/outside", root = scratch + "/root"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var tar = TarBuilder()
        tar.directory("pg_tblspc")
        tar.symlink("pg_tblspc/1", target: outside)
        tar.file("pg_tblspc/1/passwd", Array("owned".utf8))
        tar.end()
        #expect(throws: TarError.self) { _ = try extract(tar, into: root) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
    }

    @Test("a symlink already in the target is never followed")
    func preexistingSymlink() throws {
        let scratch = try Fixtures.scratchDirectory("extract-pre")
        defer { Fixtures.removeScratch(scratch) }
        let outside = scratch + "/outside", root = scratch + "/root"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/base", withDestinationPath: outside)
        var tar = TarBuilder()
        tar.file("base/1", [1])
        tar.end()
        #expect(throws: (any Error).self) { _ = try extract(tar, into: root) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
    }

    @Test("a member named twice is an error, not an overwrite")
    func duplicate() throws {
        let scratch = try Fixtures.scratchDirectory("extract-dup")
        defer { Fixtures.removeScratch(scratch) }
        var tar = TarBuilder()
        tar.file("PG_VERSION", Array("17\n".utf8))
        tar.file("PG_VERSION", Array("evil".utf8))
        tar.end()
        #expect(throws: FileSystemError.self) { _ = try extract(tar, into: scratch) }
        #expect(FileManager.default.contents(atPath: scratch + "/PG_VERSION") == Data("17\n".utf8))
    }

    @Test("a symlink the policy refuses is not created")
    func policyRefusal() throws {
        let scratch = try Fixtures.scratchDirectory("extract-policy")
        defer { Fixtures.removeScratch(scratch) }
        var tar = TarBuilder()
        tar.symlink("global", target: "/etc")
        tar.end()
        #expect(throws: TarError.self) {
            _ = try extract(tar, into: scratch) { path, _ in throw TarError.unsafePath(path.description, reason: "test policy") }
        }
        #expect(Fixtures.tree(scratch).isEmpty)
    }

    @Test("a synced extraction writes files of 1 MiB and more O_DIRECT, past the page cache, byte for byte; tmpfs and ramfs fall back")
    func directIO() throws {
        // Direct files (1 MiB and more) with and without a partial last block, ending in either
        // of the writer's two buffers, on a buffer's end or inside it, after whole blocks or none,
        // between small files.
        let buffer = DirectWriter.bufferSize
        let sizes = [1 << 20, 8192, (1 << 20) + 1, 5000, 3 * (256 << 10) + 4095, (5 << 19) + 777, 12_345,
                     (1 << 20) + 4096 + 3, (3 << 19) + 100, (3 << 19) + 4096 + 5, 8192, (1 << 20) + (200 << 10) + 17,
                     3 * buffer, 4 * buffer, 3 * buffer + 4096 + 1, 4 * buffer + 511, 0]
        // Bytes that do not repeat with any block-sized period (i * 31 did every 256 bytes: a
        // block written at the wrong offset read back the same).
        func contents(_ size: Int, _ seed: Int) -> [UInt8] {
            (0..<size).map { UInt8(truncatingIfNeeded: ((UInt64($0) &+ UInt64(seed) << 40) &* 0x9E37_79B9_7F4A_7C15) >> 56) }
        }
        var bases = [NSTemporaryDirectory(), "/dev/shm/"].filter { FileManager.default.fileExists(atPath: $0) }
        // ramfs takes no O_DIRECT on any kernel, as tmpfs did not before Linux 6.6 (Debian 12's is
        // 6.1): the extractor must fall back to the page cache there, not fail. An open(O_CREAT |
        // O_DIRECT) refused with EINVAL has created the file all the same, so a second try came
        // back "File exists" (tried). Mounting needs root, as CI runs.
        let ramfs = "/tmp/pgkeep-unit-ramfs-\(getpid())"
        if getuid() == 0 {
            try FileManager.default.createDirectory(atPath: ramfs, withIntermediateDirectories: true)
            if try Shell.run(["/bin/mount", "-t", "ramfs", "pgkeep-unit", ramfs]).succeeded { bases.append(ramfs + "/") }
        }
        defer {
            _ = try? Shell.run(["/bin/umount", ramfs])
            try? FileManager.default.removeItem(atPath: ramfs)
        }
        for base in bases {
            let scratch = base + "pgkeep-unit-direct-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            defer { Fixtures.removeScratch(scratch) }
            let fileSystem = try Shell.run(["stat", "-f", "-c", "%T", scratch]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let pageCacheOnly = ["tmpfs", "ramfs"].contains(fileSystem)  // no O_DIRECT there
            var tar = TarBuilder()
            for (index, size) in sizes.enumerated() { tar.file("base/\(index)", contents(size, index)) }
            tar.end()
            let extractor = try DirectoryExtractor(root: scratch, startsWriteback: true) { _, target in target }
            let parser = TarParser(next: extractor)
            try ChunkSplit.random.feed(tar.bytes) { try parser.consume($0) }
            try parser.finish()
            // Written O_DIRECT, a large file's first page never entered the page cache (a small
            // one's did); on tmpfs and ramfs everything is the page cache. (Before reading them back.)
            for (index, size) in sizes.enumerated() where size > 0 {
                let cached = try firstPageCached(scratch + "/base/\(index)")
                #expect(cached == (pageCacheOnly || size < 1 << 20), "\(scratch)/base/\(index), \(size) bytes: first page cached \(cached)")
            }
            for (index, size) in sizes.enumerated() {
                let path = scratch + "/base/\(index)"
                #expect(FileManager.default.contents(atPath: path) == Data(contents(size, index)), "\(path): \(size) bytes")
            }
        }
    }

    /// mincore(2) on the file's first page.
    private func firstPageCached(_ path: String) throws -> Bool {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw TestFailure("open \(path)") }
        defer { close(fd) }
        guard let map = mmap(nil, 4096, PROT_READ, MAP_SHARED, fd, 0), map != MAP_FAILED else { throw TestFailure("mmap \(path)") }
        defer { munmap(map, 4096) }
        var vector: UInt8 = 0
        guard mincore(map, 4096, &vector) == 0 else { throw TestFailure("mincore \(path)") }
        return vector & 1 == 1
    }
}

@Suite struct TargetDirectoryTests {
    @Test("a non-empty directory is refused and left alone; one we created is removed on discard")
    func lifecycle() throws {
        let scratch = try Fixtures.scratchDirectory("target")
        defer { Fixtures.removeScratch(scratch) }
        #expect(FileManager.default.createFile(atPath: scratch + "/keep", contents: Data("x".utf8)))
        #expect(throws: FileSystemError.self) { _ = try TargetDirectory(preparing: scratch) }
        #expect(FileManager.default.fileExists(atPath: scratch + "/keep"))

        let created = try TargetDirectory(preparing: scratch + "/new/backup")
        #expect(created.createdByUs)
        #expect(FileManager.default.createFile(atPath: scratch + "/new/backup/file", contents: Data()))
        created.discard()
        #expect(!FileManager.default.fileExists(atPath: scratch + "/new/backup"))

        try FileManager.default.createDirectory(atPath: scratch + "/empty", withIntermediateDirectories: false)
        let existing = try TargetDirectory(preparing: scratch + "/empty")
        #expect(FileManager.default.createFile(atPath: scratch + "/empty/file", contents: Data()))
        existing.discard()
        #expect(FileManager.default.fileExists(atPath: scratch + "/empty"), "a directory the user made stays")
        #expect(Fixtures.tree(scratch + "/empty").isEmpty)
    }
}
