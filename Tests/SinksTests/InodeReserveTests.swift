import Foundation
import Glibc
import Testing
import ArchiveStream
@testable import Sinks
import TestSupport

/// Files made ahead without names and named as members arrive (`InodeReserve`), and the
/// extractor's fallbacks where naming cannot work.
@Suite struct InodeReserveTests {
    private func link(_ reserve: InodeReserve, _ name: String, in directory: String) throws -> InodeReserve.Naming {
        let parent = try FileDescriptor.openDirectory(directory)
        return name.withCString { reserve.link($0, in: parent.raw) }
    }

    /// The named file, open for writing; nil when the reserve had none or could not name it.
    private func named(_ reserve: InodeReserve, _ name: String, in directory: String) throws -> FileDescriptor? {
        guard case .named(let fd) = try link(reserve, name, in: directory) else { return nil }
        return FileDescriptor(raw: fd, path: directory + "/" + name)
    }

    @Test("named files are private, hold what is written, and a taken name is reported taken; the unnamed are gone after stop")
    func namesFiles() throws {
        let scratch = try Fixtures.scratchDirectory("inode-reserve")
        defer { Fixtures.removeScratch(scratch) }
        try FileManager.default.createDirectory(atPath: scratch + "/sub", withIntermediateDirectories: false)
        let reserve = try #require(InodeReserve(in: try FileDescriptor.openDirectory(scratch)), "this file system makes O_TMPFILE files")
        for index in 0..<(reserve.depth * 3) {
            // Faster than the reserve's thread makes them: some are nil (the caller creates those).
            guard let file = try named(reserve, "file\(index)", in: scratch + "/sub") else { continue }
            try Array("\(index)".utf8).withUnsafeBytes { try file.writeAll($0) }
        }
        usleep(50_000)
        let last = try #require(try named(reserve, "last", in: scratch + "/sub"), "the reserve refills")
        try Array("last".utf8).withUnsafeBytes { try last.writeAll($0) }
        #expect(try link(reserve, "last", in: scratch + "/sub") == .taken)
        reserve.stop()
        #expect(try link(reserve, "after", in: scratch + "/sub") == .unavailable)

        let names = try FileManager.default.contentsOfDirectory(atPath: scratch + "/sub").sorted()
        #expect(names.contains("last") && !names.contains("after"))
        for name in names {
            let info = try FileManager.default.attributesOfItem(atPath: scratch + "/sub/" + name)
            #expect(info[.posixPermissions] as? Int == 0o600, "\(name)")
            let expected = name == "last" ? "last" : String(name.dropFirst(4))
            #expect(FileManager.default.contents(atPath: scratch + "/sub/" + name) == Data(expected.utf8), "\(name)")
        }
        // Nothing but the named files: made-ahead ones that were never named left no trace.
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch) == ["sub"])
    }

    @Test("how far ahead: 512 files, or half the descriptors left less 128 where that is lower; no reserve below 32")
    func depthPolicy() {
        #expect(InodeReserve.depth(openFileLimit: 1024, open: 0) == 448)
        #expect(InodeReserve.depth(openFileLimit: 1024, open: 10) == 443)
        #expect(InodeReserve.depth(openFileLimit: 1024, open: 600) == 148)
        #expect(InodeReserve.depth(openFileLimit: 20_000, open: 0) == 512)
        #expect(InodeReserve.depth(openFileLimit: Int.max, open: 5_000) == 512)
        #expect(InodeReserve.depth(openFileLimit: 200, open: 0) == 36)
        #expect(InodeReserve.depth(openFileLimit: 200, open: 10) == nil)
        #expect(InodeReserve.depth(openFileLimit: 1024, open: 1000) == nil)
        #expect(InodeReserve.descriptorsOpen() >= 3)  // at least standard input, output and error
    }

    @Test("the reserve fills to its depth, refills as files are named, and makes no more")
    func fillsToDepth() throws {
        let scratch = try Fixtures.scratchDirectory("inode-reserve-depth")
        defer { Fixtures.removeScratch(scratch) }
        let reserve = try #require(InodeReserve(in: try FileDescriptor.openDirectory(scratch)))
        defer { reserve.stop() }
        #expect((InodeReserve.fewest...InodeReserve.most).contains(reserve.depth))
        for _ in 0..<500 where reserve.ready < reserve.depth { usleep(10_000) }
        #expect(reserve.ready == reserve.depth)
        for index in 0..<min(100, reserve.depth) { _ = try #require(try named(reserve, "f\(index)", in: scratch)) }
        for _ in 0..<500 where reserve.ready < reserve.depth { usleep(10_000) }
        usleep(50_000)
        #expect(reserve.ready == reserve.depth, "refilled, and no further")
    }

    @Test("a cluster with group access: the reserve makes its files 0640 (less the umask); an extractor for it names those and creates private members itself")
    func groupAccess() throws {
        let scratch = try Fixtures.scratchDirectory("inode-reserve-group")
        defer { Fixtures.removeScratch(scratch) }
        let umask = try Self.umask()
        let reserve = try #require(InodeReserve(in: try FileDescriptor.openDirectory(scratch), mode: 0o640))
        let file = try #require(try named(reserve, "grouped", in: scratch))
        var info = stat()
        #expect(fstat(file.raw, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o640 & ~umask)
        reserve.stop()

        let root = scratch + "/backup"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
        let extractor = try DirectoryExtractor(root: root, modes: .groupReadable) { _, target in target }
        let grouped = 64  // files of mode 0640 in the archive, beside one private one
        var tar = TarBuilder()
        for index in 0..<grouped {
            tar.file("base/g\(index)", [UInt8(index)], mode: 0o640)
        }
        tar.file("base/private", [7], mode: 0o600)
        tar.end()
        let parser = TarParser(next: extractor)
        try ChunkSplit.random.feed(tar.bytes) { try parser.consume($0) }
        try parser.finish()
        for index in 0..<grouped {
            let path = root + "/base/g\(index)"
            #expect(FileManager.default.contents(atPath: path) == Data([UInt8(index)]))
            #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == Int(0o640 & ~umask))
        }
        #expect(try FileManager.default.attributesOfItem(atPath: root + "/base/private")[.posixPermissions] as? Int == 0o600)
        // The first file is made before the extractor returns: at least that one came from the reserve.
        #expect(extractor.filesMadeAhead >= 1 && extractor.filesMadeAhead <= grouped)
        #expect(extractor.filesWritten == grouped + 1)
        // The reserve's unnamed files are gone with it: only what the archive listed is there.
        #expect(try FileManager.default.contentsOfDirectory(atPath: root) == ["base"])
    }

    /// The process's umask, read without changing it (tests run in parallel).
    private static func umask() throws -> mode_t {
        try #require(mode_t(try ThisProcess.status("Umask"), radix: 8))
    }

    @Test("another file system (EXDEV): no file from the reserve, and the extractor creates it itself; group-readable members too")
    func fallbacks() throws {
        let scratch = try Fixtures.scratchDirectory("inode-reserve-exdev")
        defer { Fixtures.removeScratch(scratch) }
        let shm = "/dev/shm/pgkeep-unit-wal-\(getpid())"
        try FileManager.default.createDirectory(atPath: shm, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: shm) }
        let reserve = try #require(InodeReserve(in: try FileDescriptor.openDirectory(scratch)))
        usleep(20_000)
        #expect(try link(reserve, "x", in: shm) == .unavailable)
        reserve.stop()

        // pg_wal's members go to --waldir, here on tmpfs; a member with group bits is 0640.
        try FileManager.default.createSymbolicLink(atPath: scratch + "/pg_wal", withDestinationPath: shm)
        let extractor = try DirectoryExtractor(root: scratch, walDirectory: shm) { _, target in target }
        var tar = TarBuilder()
        tar.file("base/1", [1, 2, 3])
        tar.file("pg_wal/000000010000000000000001", [UInt8](repeating: 9, count: 5000))
        tar.file("base/2", [4], mode: 0o640)
        tar.end()
        let parser = TarParser(next: extractor)
        try ChunkSplit.random.feed(tar.bytes) { try parser.consume($0) }
        try parser.finish()
        #expect(FileManager.default.contents(atPath: shm + "/000000010000000000000001") == Data(repeating: 9, count: 5000))
        #expect(FileManager.default.contents(atPath: scratch + "/base/1") == Data([1, 2, 3]))
        #expect(try FileManager.default.attributesOfItem(atPath: scratch + "/base/2")[.posixPermissions] as? Int == 0o640)
        #expect(try FileManager.default.attributesOfItem(atPath: scratch + "/base/1")[.posixPermissions] as? Int == 0o600)
        // base/1 from the reserve (its first file is made before the extractor returns); the WAL
        // segment (another file system) and the group-readable base/2 created where they arrived.
        #expect(extractor.filesMadeAhead == 1 && extractor.filesWritten == 3)
    }
}
