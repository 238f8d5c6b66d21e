import Foundation
import Testing
import ArchiveStream
import PGConnection
import TestSupport
@testable import PGKeep

/// A malicious or broken server: each stream must be refused with an error naming the problem,
/// and nothing may land outside the target.
@Suite("hostile and broken BASE_BACKUP streams")
struct HostileStreamTests {
    typealias S = ScriptedStream

    /// Runs `events` as a 15+ server's answer; returns the error and checks the scratch area
    /// holds nothing but the target.
    private func refusal(_ events: [S.Event], version: Int = 17, format: BackupConfiguration.Format = .plain) throws -> String {
        let scratch = try Fixtures.scratchDirectory("hostile")
        defer { Fixtures.removeScratch(scratch) }
        var message = ""
        do {
            _ = try replay(S(version: version, events), into: scratch + "/target/backup", format: format)
            Issue.record("the stream was accepted")
        } catch {
            message = "\(error)"
        }
        let outside = Fixtures.tree(scratch).filter { !$0.hasPrefix("target") }
        #expect(outside.isEmpty, "written outside the target: \(outside)")
        #expect(!FileManager.default.fileExists(atPath: scratch + "/target/backup/" + ArchiveRouter.manifestName))
        return message
    }

    private func tar(_ build: (inout TarBuilder) -> Void) -> [UInt8] {
        var builder = TarBuilder()
        build(&builder)
        builder.end()
        return builder.bytes
    }

    @Test("an archive named ../../etc/passwd is refused")
    func archiveNameTraversal() throws {
        let message = try refusal([S.startRows, S.tablespaceRows(), .copyOut, S.newArchive("../../etc/passwd"),
                                   S.archiveData(tar { $0.file("x", [1]) })])
        #expect(message.contains("refusing archive name"))
    }

    @Test("an archive for a tablespace the server did not list is refused")
    func unlistedTablespace() throws {
        let message = try refusal([S.startRows, S.tablespaceRows(), .copyOut, S.newArchive("16999.tar", location: "/etc")])
        #expect(message.contains("did not list"))
    }

    @Test("member paths that are absolute or climb out with '..'", arguments: [
        ("absolute", "/etc/passwd"), ("dotdot", "base/../../escape"), ("dotdot-leading", "../escape"),
    ])
    func memberPathTraversal(name: String, path: String) throws {
        var builder = TarBuilder()
        builder.header(path: path, typeflag: "0", size: 1, mode: 0o600)
        builder.bytes += [UInt8](repeating: 0x41, count: 512)
        builder.end()
        let message = try refusal([S.startRows, S.tablespaceRows(), .copyOut, S.newArchive("base.tar"), S.archiveData(builder.bytes)])
        #expect(message.contains("unsafe path"), "\(message)")
    }

    @Test("a symlink outside pg_tblspc, or to an unlisted location, is refused", arguments: [
        ("global", "/tmp"), ("pg_tblspc/16385", "/etc"),
    ])
    func symlinks(path: String, target: String) throws {
        let archive = tar {
            $0.directory("pg_tblspc")
            $0.symlink(path, target: target)
            $0.file(path + "/passwd", Array("owned".utf8))
        }
        let message = try refusal([S.startRows, S.tablespaceRows([["16385", "/srv/ts", "1"]]), .copyOut,
                                   S.newArchive("base.tar"), S.archiveData(archive)])
        #expect(message.contains("unsafe path"), "\(message)")
    }

    @Test("tar output refuses the same hostile members (a later restore must not meet them)")
    func hostileTarOutput() throws {
        let archive = tar { $0.symlink("pg_tblspc/1", target: "/etc") }
        let message = try refusal([S.startRows, S.tablespaceRows(), .copyOut, S.newArchive("base.tar"), S.archiveData(archive)], format: .tar)
        #expect(message.contains("unsafe path"), "\(message)")
    }

    @Test("an ErrorResponse in the middle of the archive fails the backup")
    func errorMidStream() throws {
        let archive = tar { $0.file("PG_VERSION", Array("17\n".utf8)) }
        let message = try refusal([S.startRows, S.tablespaceRows(), .copyOut, S.newArchive("base.tar"),
                                   S.archiveData(Array(archive.prefix(600))),
                                   .error(sqlState: "XX000", message: "could not read file \"base/1/1259\": I/O error")])
        #expect(message.contains("I/O error"))
    }

    @Test("a stream that ends inside a member fails, even if the COPY ends cleanly")
    func truncatedArchive() throws {
        let archive = tar { $0.file("big", [UInt8](repeating: 7, count: 5000)) }
        let message = try refusal([S.startRows, S.tablespaceRows(), .copyOut, S.newArchive("base.tar"),
                                   S.archiveData(Array(archive.prefix(2048))), S.manifestFollows, S.archiveData(Array("{}".utf8)),
                                   .copyDone, .commandOK, S.endRows, .commandOK])
        #expect(message.contains("truncated"), "\(message)")
    }

    @Test("a corrupt tar header is refused")
    func corruptHeader() throws {
        var archive = tar { $0.file("PG_VERSION", Array("17\n".utf8)) }
        archive[10] ^= 0xFF
        let message = try refusal([S.startRows, S.tablespaceRows(), .copyOut, S.newArchive("base.tar"), S.archiveData(archive)])
        #expect(message.contains("checksum"), "\(message)")
    }

    @Test("the backup ends without an end position: not accepted")
    func noEndPosition() throws {
        let archive = tar { $0.file("PG_VERSION", Array("17\n".utf8)) }
        let message = try refusal([S.startRows, S.tablespaceRows(), .copyOut, S.newArchive("base.tar"), S.archiveData(archive),
                                   S.manifestFollows, S.archiveData(Array("{}".utf8)), .copyDone, .commandOK])
        #expect(message.contains("end position"), "\(message)")
    }

    @Test("a well-formed scripted stream is accepted (the refusals above are not an artefact)")
    func wellFormedStream() throws {
        let scratch = try Fixtures.scratchDirectory("hostile-ok")
        defer { Fixtures.removeScratch(scratch) }
        let archive = tar {
            $0.file("PG_VERSION", Array("17\n".utf8))
            $0.directory("./pg_wal/archive_status")
        }
        _ = try replay(S(version: 17, [S.startRows, S.tablespaceRows(), .copyOut, S.newArchive("base.tar"), S.archiveData(archive),
                                        S.manifestFollows, S.archiveData(Array("{}".utf8)), .copyDone, .commandOK, S.endRows, .commandOK]),
                       into: scratch + "/b")
        #expect(FileManager.default.contents(atPath: scratch + "/b/PG_VERSION") == Data("17\n".utf8))
        #expect(Fixtures.tree(scratch + "/b").contains("pg_wal/archive_status"))
    }
}
