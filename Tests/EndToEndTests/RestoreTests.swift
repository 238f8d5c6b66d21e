import Foundation
import Testing
import TestSupport

/// `pgkeep restore` with point-in-time recovery from a `pgkeep receive-wal` archive, on real
/// servers: exactly the rows committed before the target come back.
@Suite("pgkeep restore, point-in-time recovery", .serialized)
struct RestoreTests {
    @Test("restore to an LSN, a time and a restore point between marker rows", arguments: PostgresInstallation.supportedMajors)
    func pointInTime(major: Int) throws {
        let source = try SourceCluster(major: major, settings: { var s = TestCluster.Settings(); s.extraConfig = ["wal_keep_size = '1GB'"]; return s }(), scale: 1)
        defer { source.cluster.destroy() }
        let cluster = source.cluster
        let archive = try cluster.makeDirectory("archive")
        let backup = cluster.root + "/backup", tsBackup = cluster.root + "/ts-backup"
        try PGKeepBinary.run(["receive-wal"] + cluster.connectionArguments + ["--slot", "archiver", "--create-slot"]).requireSuccess()
        let archiver = try RunningArchiver(cluster.connectionArguments + ["-D", archive, "--slot", "archiver", "--compress", "zstd"])
        try waitForStreaming({ try cluster.sql($0) }, archiver: archiver)

        let load = try source.startLoad(seconds: 4)
        try PGKeepBinary.run(["backup"] + cluster.connectionArguments + ["-D", backup, "-T", "\(source.tablespace)=\(tsBackup)", "-c", "fast"]).requireSuccess()
        try load.wait().requireSuccess()
        try cluster.sql("CREATE TABLE markers (id int, at timestamptz DEFAULT clock_timestamp()) TABLESPACE ts1")
        try cluster.sql("INSERT INTO markers VALUES (1)")
        let afterFirst = try cluster.sql("SELECT pg_current_wal_insert_lsn()")
        try cluster.sql("SELECT pg_create_restore_point('between_markers')")
        Thread.sleep(forTimeInterval: 1.1)
        let betweenTime = try cluster.sql("SELECT clock_timestamp()")
        Thread.sleep(forTimeInterval: 1.1)
        try cluster.sql("INSERT INTO markers VALUES (2)")
        try cluster.sql("INSERT INTO markers VALUES (3)")
        let last = try cluster.sql("SELECT pg_walfile_name(pg_switch_wal())")
        try waitUntil("\(last) archived", archiver: archiver) { try ArchiveContents(archive).has(last) }
        #expect(try archiver.stop().status == 0)
        // The server runs restore_command as postgres; the archiver wrote as root, 0600.
        try chownToPostgres(archive)

        // A target past the archive is refused before anything is written.
        let beyond = cluster.root + "/beyond"
        let refused = try PGKeepBinary.run(["restore", backup, "--target-dir", beyond, "-T", "\(tsBackup)=\(cluster.root)/ts-beyond",
                                            "--wal-archive", archive, "--target-lsn", "FF/0"])
        #expect(refused.status == 2 && refused.stderr.contains("past the WAL the archive holds"), "\(refused.output)")
        #expect(!FileManager.default.fileExists(atPath: beyond))
        let late = try PGKeepBinary.run(["restore", backup, "--target-dir", beyond, "-T", "\(tsBackup)=\(cluster.root)/ts-beyond",
                                         "--wal-archive", archive, "--target-time", "2099-01-01 00:00:00+00"])
        #expect(late.status == 2 && late.stderr.contains("after the last transaction in the WAL archive"), "\(late.output)")
        for (option, value, says) in [("--target-name", "no_such_point", "no such restore point"),
                                      ("--target-xid", "4000000000", "no commit or abort of that transaction")] {
            let unreachable = try PGKeepBinary.run(["restore", backup, "--target-dir", beyond, "-T", "\(tsBackup)=\(cluster.root)/ts-beyond",
                                                    "--wal-archive", archive, option, value])
            #expect(unreachable.status == 2 && unreachable.stderr.contains(says), "\(unreachable.output)")
        }
        #expect(!FileManager.default.fileExists(atPath: beyond))

        for (name, target) in [("lsn", ["--target-lsn", afterFirst]), ("time", ["--target-time", betweenTime]),
                               ("name", ["--target-name", "between_markers"])] {
            let restored = cluster.root + "/restored-" + name, tablespace = cluster.root + "/ts-restored-" + name
            let result = try PGKeepBinary.run(["restore", backup, "--target-dir", restored, "-T", "\(tsBackup)=\(tablespace)",
                                               "--wal-archive", archive, "--target-action", "promote"] + target)
            try result.requireSuccess()
            #expect(try String(contentsOfFile: restored + "/postgresql.auto.conf", encoding: .utf8).contains("wal-fetch %f %p --wal-archive"))
            let server = try RestoredServer(installation: cluster.installation, dataDirectory: restored, root: cluster.root,
                                            tablespaces: [tablespace])
            defer { server.stop() }
            try waitUntil("recovery to reach the \(name) target and promote") { (try? server.sql("SELECT pg_is_in_recovery()")) == "f" }
            #expect(try server.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM markers") == "1", "\(name) target")
            #expect(try server.sql(SourceCluster.markerQuery) == source.markerChecksum)
        }

        // The drill does the same on its own: scratch restore, server, recovery, pg_amcheck, clean up.
        let scratch = cluster.root + "/drill"
        let bin = (cluster.installation.tool("pg_ctl") as NSString).deletingLastPathComponent
        let drill = try PGKeepBinary.run(["restore", backup, "--drill", "--target-dir", scratch, "--pg-bin", bin, "--wal-archive", archive,
                                          "--target-lsn", afterFirst, "--json"])
        #expect(drill.status == 0, "\(drill.output)")
        let report = try JSONSerialization.jsonObject(with: Data(drill.stdout.utf8)) as? [String: Any]
        #expect(report?["ok"] as? Bool == true && report?["amcheckPassed"] as? Bool == true, "\(drill.stdout)")
        #expect(!FileManager.default.fileExists(atPath: scratch), "the drill removes its scratch directory")
    }

    @Test("a tar backup restores with its tablespace, and wal-fetch answers as restore_command must")
    func tarRestoreAndWALFetch() throws {
        let source = try SourceCluster(major: 17, scale: 1)
        defer { source.cluster.destroy() }
        let cluster = source.cluster
        let backup = cluster.root + "/backup"
        try PGKeepBinary.run(["backup"] + cluster.connectionArguments + ["-D", backup, "-F", "tar", "-Z", "lz4", "-c", "fast"]).requireSuccess()
        let restored = cluster.root + "/restored", tablespace = cluster.root + "/ts-restored"
        try FileManager.default.createDirectory(atPath: restored, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: restored + "/old", contents: Data()))
        let notEmpty = try PGKeepBinary.run(["restore", backup, "--target-dir", restored, "-T", "\(source.tablespace)=\(tablespace)"])
        #expect(notEmpty.status == 2 && notEmpty.stderr.contains("--force"), "\(notEmpty.output)")
        try PGKeepBinary.run(["restore", backup, "--target-dir", restored, "-T", "\(source.tablespace)=\(tablespace)", "--force"]).requireSuccess()
        var info = stat()
        #expect(stat(restored, &info) == 0 && info.st_mode & 0o777 == 0o700)
        #expect(stat(restored + "/PG_VERSION", &info) == 0 && info.st_mode & 0o777 == 0o600)
        let server = try RestoredServer(installation: cluster.installation, dataDirectory: restored, root: cluster.root, tablespaces: [tablespace])
        defer { server.stop() }
        #expect(try server.sql(SourceCluster.markerQuery) == source.markerChecksum)
        #expect(try server.sql("SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'ts1'") == tablespace)

        // wal-fetch: found (decompressed), missing (1), damaged (126, which stops recovery).
        let archive = try cluster.makeDirectory("fetch-archive")
        let segment = [UInt8](repeating: 7, count: 1 << 20)
        #expect(FileManager.default.createFile(atPath: archive + "/000000010000000000000002", contents: Data(segment)))
        try Shell.check(["/usr/bin/zstd", "-q", archive + "/000000010000000000000002", "-o", archive + "/000000010000000000000003.zst"])
        #expect(FileManager.default.createFile(atPath: archive + "/000000010000000000000004.zst", contents: Data("not zstd".utf8)))
        let fetched = try PGKeepBinary.run(["wal-fetch", "000000010000000000000003", archive + "/RECOVERYXLOG", "--wal-archive", archive])
        #expect(fetched.status == 0, "\(fetched.output)")
        #expect(FileManager.default.contents(atPath: archive + "/RECOVERYXLOG") == Data(segment))
        #expect(try PGKeepBinary.run(["wal-fetch", "000000010000000000000009", archive + "/X", "--wal-archive", archive]).status == 1)
        #expect(try PGKeepBinary.run(["wal-fetch", "000000010000000000000004", archive + "/X", "--wal-archive", archive]).status == 126)
    }
}
