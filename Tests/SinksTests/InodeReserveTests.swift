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
        for index in 0..<(InodeReserve.depth * 3) {
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
    }
}
