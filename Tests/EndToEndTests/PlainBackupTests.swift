import Foundation
import Testing
import TestSupport

@Suite("pgkeep backup, plain format, on real servers", .serialized)
struct PlainBackupTests {
    @Test("plain backup under pgbench load verifies, starts, passes amcheck and holds the data", arguments: PostgresInstallation.supportedMajors)
    func plainBackupUnderLoad(major: Int) throws {
        let source = try SourceCluster(major: major)
        defer { source.cluster.destroy() }
        let cluster = source.cluster
        let backup = cluster.root + "/backup"
        let relocated = cluster.root + "/ts1-backup"

        let load = try source.startLoad(seconds: 8)
        Thread.sleep(forTimeInterval: 1)
        try cluster.sql("CREATE TABLE before_backup AS SELECT 42 AS answer")
        let result = try PGKeepBinary.run(["backup"] + cluster.connectionArguments +
                                          ["-D", backup, "-T", "\(source.tablespace)=\(relocated)", "-c", "fast", "--json"])
        try load.wait()
        #expect(result.succeeded, "pgkeep failed: \(result.output)")
        try #require(result.succeeded)

        let summary = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        #expect(summary["server_version"] as? String == "\(major)" || (summary["server_version"] as? String ?? "").hasPrefix("\(major)."))
        #expect((summary["files"] as? Int ?? 0) > 500)
        #expect(summary["tablespaces"] as? [String] == [relocated])

        // Complete and marked so; the tablespace went where -T said and the link points there.
        #expect(isFile(backup + "/backup_manifest"))
        #expect(!isFile(backup + "/backup_manifest.tmp"))
        let links = try FileManager.default.contentsOfDirectory(atPath: backup + "/pg_tblspc")
        #expect(links.count == 1)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: backup + "/pg_tblspc/" + links[0]) == relocated)

        let verified = try verifyBackup(cluster.installation, backup)
        #expect(verified.succeeded, "pg_verifybackup: \(verified.output)")

        let restored = try RestoredServer(installation: cluster.installation, dataDirectory: backup, root: cluster.root,
                                          tablespaces: [relocated])
        defer { restored.stop() }
        #expect(try restored.sql(SourceCluster.markerQuery) == source.markerChecksum)
        #expect(try restored.sql("SELECT answer FROM before_backup") == "42")
        #expect(try restored.sql("SELECT count(*) FROM pgbench_accounts") == String(2 * 100_000))
        let amcheck = try restored.amcheck()
        #expect(amcheck.succeeded, "pg_amcheck: \(amcheck.output)")
    }

    @Test("server-side compression is decoded on the fly into a plain backup", arguments: [15, 16, 17, 18])
    func serverCompressedPlain(major: Int) throws {
        let source = try SourceCluster(major: major, scale: 1)
        defer { source.cluster.destroy() }
        let cluster = source.cluster
        for method in cluster.installation.serverCompressions {
            let backup = cluster.root + "/backup-\(method)"
            let relocated = cluster.root + "/ts-\(method)"
            let result = try PGKeepBinary.run(["backup"] + cluster.connectionArguments +
                                              ["-D", backup, "-Z", "server-\(method)", "-T", "\(source.tablespace)=\(relocated)", "-c", "fast"])
            #expect(result.succeeded, "server-\(method): \(result.output)")
            let verified = try verifyBackup(cluster.installation, backup)
            #expect(verified.succeeded, "server-\(method) pg_verifybackup: \(verified.output)")
        }
    }

    @Test("non-default WAL segment sizes: WAL streamed across many segment boundaries", arguments: [(16, 1), (18, 64)])
    func walSegmentSizes(major: Int, segmentMB: Int) throws {
        var settings = TestCluster.Settings()
        settings.walSegmentSizeMB = segmentMB
        let source = try SourceCluster(major: major, settings: settings, scale: 1)
        defer { source.cluster.destroy() }
        let cluster = source.cluster
        let backup = cluster.root + "/backup"
        let load = try source.startLoad(seconds: 6)
        Thread.sleep(forTimeInterval: 0.5)
        // The rate limit keeps the backup running while pgbench fills segments.
        let result = try PGKeepBinary.run(["backup"] + cluster.connectionArguments +
                                          ["-D", backup, "-T", "\(source.tablespace)=\(cluster.root)/ts2", "-c", "fast", "-r", "6M", "--json"])
        try load.wait()
        try #require(result.succeeded, "\(result.output)")
        let summary = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        let segments = try FileManager.default.contentsOfDirectory(atPath: backup + "/pg_wal").filter { $0.count == 24 }
        #expect(segments.count == summary["wal_segments"] as? Int)
        for segment in segments {
            let size = try FileManager.default.attributesOfItem(atPath: backup + "/pg_wal/" + segment)[.size] as? Int
            #expect(size == segmentMB << 20, "\(segment)")
        }
        if segmentMB == 1 { #expect(segments.count > 1, "the load should span several 1 MB segments") }
        let verified = try verifyBackup(cluster.installation, backup)
        #expect(verified.succeeded, "pg_verifybackup: \(verified.output)")
    }

    @Test("-R makes the backup a streaming standby of its source")
    func writeRecoveryConfig() throws {
        let source = try SourceCluster(major: 17, scale: 1)
        defer { source.cluster.destroy() }
        let cluster = source.cluster
        let backup = cluster.root + "/standby"
        let relocated = cluster.root + "/ts-standby"
        let result = try PGKeepBinary.run(["backup"] + cluster.connectionArguments +
            ["-D", backup, "-R", "-S", "standby_slot", "-C", "-T", "\(source.tablespace)=\(relocated)", "-c", "fast"])
        try #require(result.succeeded, "\(result.output)")
        #expect(isFile(backup + "/standby.signal"))
        let autoConf = try String(contentsOfFile: backup + "/postgresql.auto.conf", encoding: .utf8)
        #expect(autoConf.contains("primary_conninfo = '"))
        // Only what differs from libpq's defaults: an older server's libpq may not know newer
        // keywords, and the backup-taker's implicit ~/.pgpass means nothing to the standby.
        #expect(!autoConf.contains("sslmode=prefer") && !autoConf.contains("passfile="), "\(autoConf)")
        #expect(autoConf.contains("primary_slot_name = 'standby_slot'"))
        #expect(try cluster.sql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'standby_slot'") == "1")

        let standby = try RestoredServer(installation: cluster.installation, dataDirectory: backup, root: cluster.root,
                                         tablespaces: [relocated])
        defer { standby.stop() }
        #expect(try standby.sql("SELECT pg_is_in_recovery()") == "t")
        try cluster.sql("CREATE TABLE after_backup AS SELECT 7 AS seven")
        var replicated = ""
        for _ in 0..<100 where replicated != "7" {
            replicated = (try? standby.sql("SELECT seven FROM after_backup")) ?? ""
            if replicated != "7" { Thread.sleep(forTimeInterval: 0.2) }
        }
        #expect(replicated == "7", "the standby did not replicate a table created after the backup")
    }
}
