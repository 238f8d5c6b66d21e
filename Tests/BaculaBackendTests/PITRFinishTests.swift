import Testing
import Foundation
@testable import BaculaBackend
@testable import Manifest
import PGKeep
import TestSupport

/// Finishing a PITR restore: the files Bacula wrote checked against the manifest (and a label
/// rewritten), on a thread per processor, the first problem reported.
@Suite struct PITRFinishTests {
    typealias Step = PITRRestoreSession.FinishStep

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static func entry(_ path: String, _ bytes: [UInt8]) -> BackupManifest.File {
        let summer = Checksummer(.crc32c)
        bytes.withUnsafeBytes { summer.update($0) }
        return BackupManifest.File(path: path, size: UInt64(bytes.count), algorithm: .crc32c, checksum: summer.finish())
    }

    /// Fifty files of different sizes, each listed with its checksum.
    static func files(in scratch: String) throws -> [(path: String, entry: BackupManifest.File)] {
        try (0..<50).map { number in
            let bytes = (0..<(number * 997 + 1)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ number) }
            let path = scratch + "/\(number)"
            try write(bytes, to: path)
            return (path, entry("base/1/\(number)", bytes))
        }
    }

    @Test("files restored as the manifest says pass")
    func intact() throws {
        let scratch = try Fixtures.scratchDirectory("finish-ok")
        defer { Fixtures.removeScratch(scratch) }
        let steps = try Self.files(in: scratch).map { Step(size: $0.entry.size, work: .check($0.path, entry: $0.entry)) }
        #expect(try PITRRestoreSession.perform(steps, blockSize: 8192) == 0)
    }

    @Test("one file among many with other contents, or missing, fails the restore and is named")
    func damaged() throws {
        let scratch = try Fixtures.scratchDirectory("finish-bad")
        defer { Fixtures.removeScratch(scratch) }
        var files = try Self.files(in: scratch)
        var changed = try Array(Data(contentsOf: URL(fileURLWithPath: files[17].path)))
        changed[changed.count / 2] ^= 0xFF
        try Self.write(changed, to: files[17].path)
        let steps = files.map { Step(size: $0.entry.size, work: .check($0.path, entry: $0.entry)) }
        let error = try #require(throws: PGKeepError.self) { try PITRRestoreSession.perform(steps, blockSize: 8192) }
        #expect(error.code == .verification)
        #expect(error.message.contains("\"base/1/17\" restored with other contents"), "\(error.message)")

        files = try Self.files(in: scratch)
        try FileManager.default.removeItem(atPath: files[3].path)
        let missing = try #require(throws: PGKeepError.self) {
            try PITRRestoreSession.perform(files.map { Step(size: $0.entry.size, work: .check($0.path, entry: $0.entry)) }, blockSize: 8192)
        }
        #expect(missing.message.contains("\"base/1/3\" was not restored"), "\(missing.message)")
    }

    @Test("an incremental backup's label loses its INCREMENTAL FROM lines")
    func label() throws {
        let scratch = try Fixtures.scratchDirectory("finish-label")
        defer { Fixtures.removeScratch(scratch) }
        let label = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nINCREMENTAL FROM LSN: 0/1000028\nINCREMENTAL FROM TLI: 1\nSTART TIMELINE: 1\n"
        try Self.write(Array(label.utf8), to: scratch + "/backup_label")
        _ = try PITRRestoreSession.perform([Step(size: 100, work: .writeWholeBackupLabel(in: scratch))], blockSize: 8192)
        let written = try String(contentsOfFile: scratch + "/backup_label", encoding: .utf8)
        #expect(written == "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nSTART TIMELINE: 1\n")
    }
}
