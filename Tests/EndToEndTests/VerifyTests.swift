import Foundation
import Testing
import TestSupport

/// `pgkeep verify` must agree with pg_verifybackup of the same version: on an intact backup, and
/// on each kind of damage.
@Suite("pgkeep verify agrees with pg_verifybackup", .serialized)
struct VerifyTests {
    static let algorithms = [14: "CRC32C", 15: "SHA256", 16: "SHA224", 17: "SHA512", 18: "SHA384"]

    /// Damage done to a copy of the backup, and the words pgkeep must then use.
    static let tampering: [(name: String, damage: @Sendable (String) throws -> Void, says: String)] = [
        ("flipped byte", { try flipByte(in: $0 + "/global/pg_control", at: 100) }, "checksum mismatch for file \"global/pg_control\""),
        ("truncated file", { _ = truncate($0 + "/PG_VERSION", 1) }, "\"PG_VERSION\" has size 1 on disk but size"),
        ("deleted file", { try FileManager.default.removeItem(atPath: $0 + "/backup_label") }, "\"backup_label\" is present in the manifest but not on disk"),
        ("added file", { _ = FileManager.default.createFile(atPath: $0 + "/base/stray", contents: Data("x".utf8)) }, "\"base/stray\" is present on disk but not in the manifest"),
        ("damaged WAL", { dir in
            let wal = try FileManager.default.contentsOfDirectory(atPath: dir + "/pg_wal").filter { $0.count == 24 }.sorted()[0]
            try flipByte(in: dir + "/pg_wal/" + wal, at: 200)
        }, "fails its CRC-32C check"),
        ("missing WAL", { dir in
            for wal in try FileManager.default.contentsOfDirectory(atPath: dir + "/pg_wal") where wal.count == 24 {
                try FileManager.default.removeItem(atPath: dir + "/pg_wal/" + wal)
            }
        }, "WAL"),
        ("edited manifest", { dir in
            let path = dir + "/backup_manifest"
            var text = try String(contentsOfFile: path, encoding: .utf8)
            text = text.replacingOccurrences(of: "\"Path\": \"PG_VERSION\", \"Size\": 3", with: "\"Path\": \"PG_VERSION\", \"Size\": 4")
            try text.write(toFile: path, atomically: false, encoding: .utf8)
        }, "manifest checksum mismatch"),
    ]

    @Test("intact and damaged backups", arguments: PostgresInstallation.supportedMajors)
    func agreesWithPGVerifyBackup(major: Int) throws {
        let source = try SourceCluster(major: major, scale: 1)
        defer { source.cluster.destroy() }
        let cluster = source.cluster
        let backup = cluster.root + "/backup"
        let algorithm = Self.algorithms[major] ?? "CRC32C"
        try PGKeepBinary.run(["backup"] + cluster.connectionArguments + ["-D", backup, "-T", "\(source.tablespace)=\(cluster.root)/ts-backup",
                                                                       "-c", "fast", "--manifest-checksums", algorithm]).requireSuccess()
        let intact = try PGKeepBinary.run(["verify", backup])
        #expect(intact.status == 0, "\(intact.output)")
        #expect(intact.stdout.contains("backup successfully verified"))
        #expect(try verifyBackup(cluster.installation, backup).succeeded)

        for tamper in Self.tampering {
            let copy = cluster.root + "/tampered"
            try? FileManager.default.removeItem(atPath: copy)
            try Shell.check(["/bin/cp", "-a", backup, copy])
            try tamper.damage(copy)
            let ours = try PGKeepBinary.run(["verify", copy])
            let theirs = try verifyBackup(cluster.installation, copy)
            #expect(ours.status != 0 && !theirs.succeeded, "\(tamper.name): pgkeep \(ours.status), pg_verifybackup \(theirs.status)\n\(ours.output)\n\(theirs.output)")
            #expect(ours.stderr.contains(tamper.says), "\(tamper.name): \(ours.stderr)")
            if tamper.name == "flipped byte" {
                // restore verifies first and refuses a backup that does not verify.
                let refused = try PGKeepBinary.run(["restore", copy, "--target-dir", cluster.root + "/refused", "-T", "\(cluster.root)/ts-backup=\(cluster.root)/ts-refused"])
                #expect(refused.status != 0 && refused.stderr.contains("does not verify"), "\(refused.output)")
                #expect(!FileManager.default.fileExists(atPath: cluster.root + "/refused"))
            }
        }
    }

    @Test("tar backups, compressed or not, are read without unpacking", arguments: [17, 18])
    func tarBackups(major: Int) throws {
        let source = try SourceCluster(major: major, scale: 1)
        defer { source.cluster.destroy() }
        let cluster = source.cluster
        for compression in ["zstd", "gzip", "none"] {
            let backup = cluster.root + "/tar-" + compression
            try PGKeepBinary.run(["backup"] + cluster.connectionArguments + ["-D", backup, "-F", "tar", "-Z", compression, "-c", "fast"]).requireSuccess()
            let intact = try PGKeepBinary.run(["verify", backup])
            #expect(intact.status == 0, "\(compression): \(intact.output)")
            if major >= 18 && compression != "zstd" {
                // (The PostgreSQL 18 build used here has no zstd support.)
                #expect(try verifyBackup(cluster.installation, backup, extra: ["--no-parse-wal"]).succeeded, "pg_verifybackup 18 reads tar too")
            }
        }
        // A member removed from an uncompressed base.tar (GNU tar --delete).
        let backup = cluster.root + "/tar-none"
        try Shell.check(["/bin/tar", "--delete", "-f", backup + "/base.tar", "PG_VERSION"])
        let damaged = try PGKeepBinary.run(["verify", backup])
        #expect(damaged.status == 1 && damaged.stderr.contains("\"PG_VERSION\" is present in the manifest but not on disk"), "\(damaged.output)")
        if major >= 18 { #expect(!(try verifyBackup(cluster.installation, backup, extra: ["--no-parse-wal"]).succeeded)) }
    }

    @Test("WAL taken from a receive-wal archive", arguments: [15, 18])
    func walFromArchive(major: Int) throws {
        var settings = TestCluster.Settings()
        settings.extraConfig = ["wal_keep_size = '1GB'"]
        let cluster = try TestCluster(major: major, settings: settings)
        defer { cluster.destroy() }
        let archive = try cluster.makeDirectory("archive")
        let backup = cluster.root + "/backup"
        try PGKeepBinary.run(["receive-wal"] + cluster.connectionArguments + ["--slot", "archiver", "--create-slot"]).requireSuccess()
        let archiver = try RunningArchiver(cluster.connectionArguments + ["-D", archive, "--slot", "archiver"])
        try waitForStreaming({ try cluster.sql($0) }, archiver: archiver)
        try PGKeepBinary.run(["backup"] + cluster.connectionArguments + ["-D", backup, "-X", "none", "-c", "fast"]).requireSuccess()
        // The backup's end already switched segments; write something so this switch does too.
        let last = try cluster.sql("CREATE TABLE after_backup (x int); SELECT pg_walfile_name(pg_switch_wal())")
        try waitUntil("\(last) archived", archiver: archiver) { try ArchiveContents(archive).has(last) }
        #expect(try archiver.stop().status == 0)

        let without = try PGKeepBinary.run(["verify", backup])
        #expect(without.status == 1 && without.stderr.contains("WAL"), "\(without.output)")
        let with = try PGKeepBinary.run(["verify", backup, "--wal-archive", archive, "--json"])
        #expect(with.status == 0, "\(with.output)")
        let report = try JSONSerialization.jsonObject(with: Data(with.stdout.utf8)) as? [String: Any]
        #expect(report?["ok"] as? Bool == true)
        #expect(try verifyBackup(cluster.installation, backup, extra: ["--wal-directory", archive]).succeeded)
    }
}

private func flipByte(in path: String, at offset: UInt64) throws {
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    try handle.seek(toOffset: offset)
    let byte = try handle.read(upToCount: 1) ?? Data([0])
    try handle.seek(toOffset: offset)
    try handle.write(contentsOf: Data([byte[0] ^ 0xFF]))
}
