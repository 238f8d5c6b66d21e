import Foundation
import Testing
import TestSupport

/// A repository on real servers: Full → Incremental → Differential → Incremental under
/// pgbench, marker rows between the jobs, and restores to the latest point and to a time between
/// every pair of jobs that hold exactly the markers committed before it.
@Suite("backup repository with levels", .serialized)
struct RepositoryTests {
    struct Marker {
        var id: Int
        /// A moment just before the marker's commit, and one just after.
        var before: String
        var after: String
    }

    static func json(_ text: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
    }

    @discardableResult
    func run(_ arguments: [String]) throws -> CommandResult {
        let result = try PGKeepBinary.run(arguments, timeout: 300)
        guard result.succeeded else { throw TestFailure("pgkeep \(arguments.joined(separator: " ")) exited \(result.status):\n\(result.output)") }
        return result
    }

    @Test("full → incremental → differential → incremental; restores to latest and between every pair of jobs", arguments: [14, 15, 16, 17, 18])
    func chain(major: Int) throws {
        var settings = TestCluster.Settings()
        if major >= 17 { settings.extraConfig = ["summarize_wal = on"] }
        let cluster = try TestCluster(major: major, settings: settings)
        defer { cluster.destroy() }
        try cluster.sql("CREATE TABLE markers (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())")
        try Shell.check([cluster.installation.tool("pgbench"), "-i", "-q", "-s", "1"] + cluster.connectionArguments + ["postgres"])
        let repo = cluster.root + "/repo"
        let connection = "host=\(cluster.socketDirectory) port=\(cluster.port) user=postgres dbname=postgres"
        try run(["repo", "init", "--repo", repo, "-d", connection, "--compress", "zstd"])
        let load = try Shell.spawn([cluster.installation.tool("pgbench"), "-n", "-c", "2", "-T", "60"] + cluster.connectionArguments + ["postgres"])
        defer { load.signal(SIGTERM); _ = try? load.wait(timeout: 30) }

        var markers: [Marker] = []
        func marker() throws {
            let id = markers.count + 1
            let before = try cluster.sql("SELECT clock_timestamp()")
            usleep(300_000)
            try cluster.sql("INSERT INTO markers (id) VALUES (\(id))")
            usleep(300_000)
            markers.append(Marker(id: id, before: before, after: try cluster.sql("SELECT clock_timestamp()")))
        }
        var records: [[String: Any]] = []
        for level in ["full", "incremental", "differential", "incremental"] {
            if level == "differential" {
                // WAL waiting when the differential starts (~30 MB, whole segments): archived
                // beside its base backup. The restores between the incremental and the
                // differential replay it.
                try cluster.sql("CREATE TABLE backlog AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 400000) g")
            }
            let job = try run(["backup", "--repo", repo, "--level", level, "-cfast", "--json"])
            if level == "differential" {
                #expect(job.stderr.contains("while the backup ran"), "the waiting WAL was not archived alongside the backup:\n\(job.stderr)")
            }
            let taken = try Self.json(job.stdout)
            #expect(taken["level"] as? String == level, "\(taken)")
            #expect(taken["fallback_reason"] == nil || level == "differential", "\(taken)")
            records.append(taken)
            try marker()
        }
        // The differential depends on the full; list --json agrees with what the jobs printed.
        #expect(records[2]["parent"] as? String == records[0]["id"] as? String)
        #expect(records[0]["parent"] is NSNull)
        let listed = try JSONSerialization.jsonObject(with: Data(try run(["list", "--repo", repo, "--json"]).stdout.utf8)) as! [[String: Any]]
        #expect(listed.map { $0["id"] as? String } == records.map { $0["id"] as? String })
        let verified = try PGKeepBinary.run(["verify", "--repo", repo])
        #expect(verified.succeeded, "\(verified.output)")
        // One more WAL switch so the last marker's commit is archived before "latest".
        try run(["backup", "--repo", repo, "--level", "incremental"])

        // Restores: latest, then a time just before each marker and just after it.
        // The restored server's restore_command (pgkeep wal-fetch) runs as postgres.
        try chownToPostgres(repo)
        func restore(_ extra: [String], expect ids: [Int], name: String) throws {
            let target = cluster.root + "/restore-\(name)"
            try run(["restore", "--repo", repo, "--target-dir", target] + extra)
            let server = try RestoredServer(installation: cluster.installation, dataDirectory: target, root: cluster.root)
            defer { server.stop(); try? FileManager.default.removeItem(atPath: target) }
            var inRecovery = "t"
            for _ in 0..<300 where inRecovery != "f" {
                inRecovery = (try? server.sql("SELECT pg_is_in_recovery()")) ?? "t"
                if inRecovery != "f" { usleep(100_000) }
            }
            #expect(inRecovery == "f", "\(name): the restored server promoted")
            let present = try server.sql("SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM markers")
            #expect(present == ids.map(String.init).joined(separator: ","), "\(name): markers \(present)")
            let amcheck = try server.amcheck()
            #expect(amcheck.succeeded, "\(name): \(amcheck.output)")
            // 17's incremental visibility maps miss cleared bits: index-only scans would return
            // dead rows unless the restore leaves those maps out.
            #expect(try server.visibilityMapErrors() == "0", "\(name): visibility map bits set for tuples that are not visible")
        }
        try restore([], expect: [1, 2, 3, 4], name: "latest")
        for marker in markers {
            try restore(["--target-time", marker.after, "--target-action", "promote"], expect: Array(1...marker.id), name: "after-\(marker.id)")
        }
        try restore(["--target-time", markers[0].before, "--target-action", "promote"], expect: [], name: "before-1")
    }

    @Test("differentials store a small part of the full; 17+ files are pg_combinebackup's, byte for byte", arguments: [15, 17, 18])
    func differentialSize(major: Int) throws {
        var settings = TestCluster.Settings()
        if major >= 17 { settings.extraConfig = ["summarize_wal = on"] }
        let cluster = try TestCluster(major: major, settings: settings)
        defer { cluster.destroy() }
        try cluster.sql("CREATE TABLE big (id int, filler text) WITH (fillfactor = 100)")
        try cluster.sql("INSERT INTO big SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 300000) g")
        try cluster.sql("VACUUM FREEZE big")
        try cluster.sql("CHECKPOINT")
        let repo = cluster.root + "/repo"
        try run(["repo", "init", "--repo", repo, "-d", "host=\(cluster.socketDirectory) port=\(cluster.port) user=postgres", "--compress", "none"])
        let full = try Self.json(try run(["backup", "--repo", repo, "--level", "full", "-cfast", "--json"]).stdout)
        // About 1 % of the table's blocks.
        try cluster.sql("UPDATE big SET filler = 'changed' WHERE id <= 3000")
        let differential = try Self.json(try run(["backup", "--repo", repo, "--level", "differential", "-cfast", "--json"]).stdout)
        let fullStored = full["bytes_stored"] as! Int, diffStored = differential["bytes_stored"] as! Int
        #expect(differential["level"] as? String == "differential")
        #expect(diffStored * 10 <= fullStored, "stored \(diffStored) of the full's \(fullStored)")
        if major >= 17 {
            #expect(differential["method"] as? String == "incremental")
            let fullReceived = full["bytes_received"] as! Int, diffReceived = differential["bytes_received"] as! Int
            #expect(diffReceived * 10 <= fullReceived, "received \(diffReceived) of the full's \(fullReceived)")
            // Our reconstruction against pg_combinebackup's, on the same two backups.
            let exportedFull = cluster.root + "/export-full", exportedDiff = cluster.root + "/export-diff"
            try run(["repo", "export", "--repo", repo, "--backup", full["id"] as! String, "--target-dir", exportedFull])
            try run(["repo", "export", "--repo", repo, "--backup", differential["id"] as! String, "--target-dir", exportedDiff])
            let combined = cluster.root + "/combined"
            try Shell.check([cluster.installation.tool("pg_combinebackup"), exportedFull, exportedDiff, "-o", combined])
            let restored = cluster.root + "/restored"
            try run(["restore", "--repo", repo, "--backup", differential["id"] as! String, "--target-dir", restored])
            // Byte for byte, but for 17's visibility maps, which pgkeep leaves out (IncrementalVisibilityMap).
            try compareTrees(restored, combined, ignoring: ["backup_manifest", "pg_wal", "postgresql.auto.conf", "recovery.signal"],
                             ignoringSuffix: major == 17 ? "_vm" : nil)
        } else {
            #expect(differential["method"] as? String == "file")
            let restored = cluster.root + "/restored"
            try run(["restore", "--repo", repo, "--target-dir", restored])
            try chownToPostgres(repo)
            let server = try RestoredServer(installation: cluster.installation, dataDirectory: restored, root: cluster.root)
            defer { server.stop() }
            var answer = ""
            for _ in 0..<300 where answer.isEmpty {
                answer = (try? server.sql("SELECT count(*) FILTER (WHERE filler = 'changed') || '/' || count(*) FROM big")) ?? ""
                if answer.isEmpty { usleep(100_000) }
            }
            #expect(answer == "3000/300000")
        }
    }

    @Test("a cluster without checksums: pages whose hint bits alone changed are caught by the block maps (PG 16)")
    func hintBits() throws {
        var settings = TestCluster.Settings()
        settings.dataChecksums = false
        settings.extraConfig = ["wal_log_hints = off", "autovacuum = off"]
        let cluster = try TestCluster(major: 16, settings: settings)
        defer { cluster.destroy() }
        try cluster.sql("CREATE TABLE h AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 100000) g")
        try cluster.sql("CHECKPOINT")
        let repo = cluster.root + "/repo"
        try run(["repo", "init", "--repo", repo, "-d", "host=\(cluster.socketDirectory) port=\(cluster.port) user=postgres"])
        try run(["backup", "--repo", repo, "--level", "full", "-cfast"])
        // Reading sets hint bits; with neither checksums nor wal_log_hints no WAL says so, and
        // the pages keep their LSN.
        try cluster.sql("SELECT count(*) FROM h")
        try cluster.sql("CHECKPOINT")
        let differential = try Self.json(try run(["backup", "--repo", repo, "--level", "differential", "-cfast", "--json"]).stdout)
        #expect(differential["method"] as? String == "file")
        let restored = cluster.root + "/restored"
        try run(["restore", "--repo", repo, "--target-dir", restored])
        #expect(try PGKeepBinary.run(["verify", "--repo", repo]).succeeded)
    }

    @Test("refusals and crashes: no full, another cluster, two jobs at once, kill -9 mid-differential, expire keeps what it promised")
    func refusalsAndCrashes() throws {
        let cluster = try TestCluster(major: 16)
        defer { cluster.destroy() }
        try Shell.check([cluster.installation.tool("pgbench"), "-i", "-q", "-s", "5"] + cluster.connectionArguments + ["postgres"])
        let repo = cluster.root + "/repo"
        let conninfo = "host=\(cluster.socketDirectory) port=\(cluster.port) user=postgres"
        try run(["repo", "init", "--repo", repo, "-d", conninfo])

        // No full yet: a differential becomes one, and says why.
        let first = try Self.json(try run(["backup", "--repo", repo, "--level", "differential", "-cfast", "--json"]).stdout)
        #expect(first["level"] as? String == "full")
        #expect((first["fallback_reason"] as? String)?.contains("no full backup") == true, "\(first)")

        // Another cluster's server is refused.
        let other = try TestCluster(major: 16)
        defer { other.destroy() }
        let refused = try PGKeepBinary.run(["backup", "--repo", repo, "--level", "full", "-h", other.socketDirectory, "-p", String(other.port), "-U", "postgres"])
        #expect(refused.status == 1 && refused.stderr.contains("holds backups of the cluster with system identifier"), "\(refused.output)")

        // SIGINT during a differential that archives the waiting WAL (~30 MB) beside its backup:
        // the job and its second archiver stop, it says so, and the repository is as before.
        try cluster.sql("CREATE TABLE backlog AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 400000) g")
        let interrupted = try Shell.spawn([PGKeepBinary.path, "backup", "--repo", repo, "--level", "differential", "-cfast", "-v"])
        try waitUntil("the differential to start storing files", timeout: 60) {
            ((try? FileManager.default.contentsOfDirectory(atPath: repo + "/backups")) ?? []).contains { $0.hasPrefix(".partial-") }
        }
        interrupted.signal(SIGINT)
        let stopped = try interrupted.wait(timeout: 30)
        #expect(stopped.status == 1 && stopped.stderr.contains("backup cancelled"), "\(stopped.output)")
        #expect(stopped.stderr.contains("alongside the backup"), "the waiting WAL was not being archived beside the backup:\n\(stopped.stderr)")
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: repo + "/backups")).contains { $0.hasPrefix(".partial-") })

        // kill -9 during a differential (rate-limited so it is caught mid-way): the repository is as before.
        try cluster.sql("UPDATE pgbench_accounts SET abalance = 1 WHERE aid < 1000")
        let killed = try Shell.spawn([PGKeepBinary.path, "backup", "--repo", repo, "--level", "differential", "-cfast", "-P", "-v"])
        try waitUntil("the differential to start storing files", timeout: 60) {
            ((try? FileManager.default.contentsOfDirectory(atPath: repo + "/backups")) ?? []).contains { $0.hasPrefix(".partial-") }
        }
        // A second full/differential job is refused while it runs, naming it.
        let second = try PGKeepBinary.run(["backup", "--repo", repo, "--level", "full"])
        #expect(second.status == 1 && second.stderr.contains("another full or differential backup is running"), "\(second.output)")
        killed.signal(SIGKILL)
        _ = try? killed.wait(timeout: 30)
        let listed = try JSONSerialization.jsonObject(with: Data(try run(["list", "--repo", repo, "--json"]).stdout.utf8)) as! [[String: Any]]
        #expect(listed.count == 1, "the killed job is not listed")
        let after = try Self.json(try run(["backup", "--repo", repo, "--level", "differential", "-cfast", "--json"]).stdout)
        #expect(after["level"] as? String == "differential" && after["parent"] as? String == first["id"] as? String)
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: repo + "/backups")).contains { $0.hasPrefix(".partial-") })

        // A receive-wal archiving into the repository (with its slot): an incremental waits for it
        // to archive the switched segment instead of streaming itself.
        let archiver = try RunningArchiver(["-h", cluster.socketDirectory, "-p", String(cluster.port), "-U", "postgres",
                                            "-D", repo + "/wal", "--slot", "pgkeep", "-v"])
        try waitForStreaming({ try cluster.sql($0) }, archiver: archiver)
        let waited = try run(["backup", "--repo", repo, "--level", "incremental", "--json"])
        #expect(waited.stderr.contains("waiting for it to archive"), "\(waited.stderr)")
        #expect(try archiver.stop().status == 0)

        // expire: a second full, then keep one full: the first full and its differential go, the
        // WAL before the kept full's start goes, and the kept chain still verifies and restores.
        try run(["backup", "--repo", repo, "--level", "incremental"])
        let second_full = try Self.json(try run(["backup", "--repo", repo, "--level", "full", "-cfast", "--json"]).stdout)
        try run(["backup", "--repo", repo, "--level", "incremental"])
        let dry = try run(["expire", "--repo", repo, "--keep-full", "1", "--dry-run"]).stdout
        #expect(dry.contains("would remove backup \(first["id"] as! String)") && dry.contains("would remove backup \(after["id"] as! String)"), "\(dry)")
        #expect((try JSONSerialization.jsonObject(with: Data(try run(["list", "--repo", repo, "--json"]).stdout.utf8)) as! [Any]).count == 6, "a dry run removes nothing")
        try run(["expire", "--repo", repo, "--keep-full", "1"])
        let kept = try JSONSerialization.jsonObject(with: Data(try run(["list", "--repo", repo, "--json"]).stdout.utf8)) as! [[String: Any]]
        #expect(kept.first?["id"] as? String == second_full["id"] as? String && kept.count == 2)
        #expect(try PGKeepBinary.run(["verify", "--repo", repo]).succeeded)
        let restored = cluster.root + "/restored"
        try run(["restore", "--repo", repo, "--target-dir", restored])
        try chownToPostgres(repo)
        let server = try RestoredServer(installation: cluster.installation, dataDirectory: restored, root: cluster.root)
        defer { server.stop() }
        var count = ""
        for _ in 0..<300 where count.isEmpty {
            count = (try? server.sql("SELECT count(*) FROM pgbench_accounts WHERE abalance = 1")) ?? ""
            if count.isEmpty { usleep(100_000) }
        }
        #expect(count == "999")
    }

    /// Every regular file under `left` has an identical twin under `right`, and the other way round.
    func compareTrees(_ left: String, _ right: String, ignoring: Set<String>, ignoringSuffix: String? = nil) throws {
        func files(_ root: String) throws -> [String: String] {
            var found: [String: String] = [:]
            let enumerator = FileManager.default.enumerator(atPath: root)!
            while let relative = enumerator.nextObject() as? String {
                if ignoring.contains(String(relative.split(separator: "/").first ?? "")) { continue }
                if let ignoringSuffix, relative.hasSuffix(ignoringSuffix) { continue }
                var isDirectory: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: root + "/" + relative, isDirectory: &isDirectory)
                if !isDirectory.boolValue { found[relative] = root + "/" + relative }
            }
            return found
        }
        let ours = try files(left), theirs = try files(right)
        #expect(Set(ours.keys) == Set(theirs.keys), "only ours: \(Set(ours.keys).subtracting(theirs.keys).sorted().prefix(5)); only pg_combinebackup's: \(Set(theirs.keys).subtracting(ours.keys).sorted().prefix(5))")
        var different: [String] = []
        for (path, file) in ours {
            guard let twin = theirs[path] else { continue }
            if FileManager.default.contents(atPath: file) != FileManager.default.contents(atPath: twin) { different.append(path) }
        }
        #expect(different.isEmpty, "files differing from pg_combinebackup's: \(different.sorted().prefix(10))")
    }
}
