import Foundation
import Testing
import TestSupport

/// What `receive-wal` refuses or stops on, and the service features around it (PG 17 and 16).
@Suite(.serialized) struct ReceiveWALRefusalTests {
    @Test("a second archiver on the directory, and another cluster's server, are refused")
    func refusesSecondArchiverAndOtherCluster() throws {
        let cluster = try TestCluster(major: 17)
        defer { cluster.destroy() }
        let other = try TestCluster(major: 17)
        defer { other.destroy() }
        let archive = try cluster.makeDirectory("archive")
        let archiver = try RunningArchiver(cluster.connectionArguments + ["-D", archive])
        try waitForStreaming({ try cluster.sql($0) }, archiver: archiver)

        let second = try PGKeepBinary.run(["receive-wal"] + cluster.connectionArguments + ["-D", archive], timeout: 30)
        #expect(second.status == 1)
        #expect(second.stderr.contains("another pgkeep receive-wal (pid \(archiver.process.pid)) is already archiving into \(archive)"), "\(second.stderr)")
        #expect(try archiver.stop().status == 0)

        let before = try ArchiveContents(archive)
        let wrong = try PGKeepBinary.run(["receive-wal"] + other.connectionArguments + ["-D", archive, "--no-loop"], timeout: 30)
        #expect(wrong.status == 1)
        let ours = try cluster.sql("SELECT system_identifier FROM pg_control_system()")
        let theirs = try other.sql("SELECT system_identifier FROM pg_control_system()")
        #expect(wrong.stderr.contains("archives WAL of the cluster with system identifier \(ours), but the server is cluster \(theirs)"), "\(wrong.stderr)")
        let after = try ArchiveContents(archive)
        #expect(after.complete == before.complete && after.partial == before.partial, "nothing written for the wrong cluster")
    }

    @Test("WAL the server has already removed is named, with what to do")
    func missingWALIsAClearError() throws {
        var settings = TestCluster.Settings()
        settings.extraConfig = ["wal_keep_size = 0", "min_wal_size = '32MB'", "max_wal_size = '64MB'"]
        let cluster = try TestCluster(major: 16, settings: settings)
        defer { cluster.destroy() }
        let archive = try cluster.makeDirectory("archive")
        let archiver = try RunningArchiver(cluster.connectionArguments + ["-D", archive])
        try waitForStreaming({ try cluster.sql($0) }, archiver: archiver)
        let partialSegment = try cluster.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
        #expect(try archiver.stop().status == 0)

        // Without a slot nothing holds WAL for the archiver while it is away.
        for _ in 0..<4 {
            try cluster.sql("CREATE TABLE IF NOT EXISTS filler (x int); INSERT INTO filler VALUES (1); SELECT pg_switch_wal(); CHECKPOINT")
        }
        let result = try PGKeepBinary.run(["receive-wal"] + cluster.connectionArguments + ["-D", archive, "--no-loop"], timeout: 60)
        #expect(result.status == 1)
        #expect(result.stderr.contains("requested WAL segment \(partialSegment) has already been removed"), "\(result.stderr)")
        #expect(result.stderr.contains("use a replication slot"), "\(result.stderr)")
        #expect(try ArchiveContents(archive).partial == [partialSegment], "the partial segment is kept as it was")
    }

    @Test("synchronous standby, metrics, JSON logs, --endpos and --no-loop")
    func serviceFeatures() throws {
        var settings = TestCluster.Settings()
        settings.extraConfig = ["synchronous_standby_names = 'pgkeep_receivewal'", "wal_keep_size = '1GB'"]
        let cluster = try TestCluster(major: 17, settings: settings)
        defer { cluster.destroy() }
        let archive = try cluster.makeDirectory("archive")
        let port = try freePort()
        let archiver = try RunningArchiver(cluster.connectionArguments + ["-D", archive, "--slot", "sync_archiver", "--synchronous",
                                                                        "--json", "--metrics-addr", "127.0.0.1:\(port)", "-s", "1"])
        // The slot must exist first: the error says how to make it.
        try waitUntil("the missing-slot error", archiver: nil) { archiver.process.hasExited }
        let missing = try archiver.process.wait()
        #expect(missing.status == 1 && missing.stderr.contains("--create-slot"), "\(missing.stderr)")
        try PGKeepBinary.run(["receive-wal"] + cluster.connectionArguments + ["--slot", "sync_archiver", "--create-slot"]).requireSuccess()
        let running = try RunningArchiver(missing.stderr.isEmpty ? [] : archiver.arguments)
        try waitForStreaming({ try cluster.sql($0) }, archiver: running)

        // Commits wait for our flush: they complete only because every write is fsynced and reported.
        try cluster.sql("CREATE TABLE synced (id int); INSERT INTO synced SELECT generate_series(1, 1000)")
        let state = try cluster.sql("SELECT sync_state || ' ' || (flush_lsn = pg_current_wal_flush_lsn())::text FROM pg_stat_replication WHERE application_name = 'pgkeep_receivewal'")
        #expect(state == "sync true", "flushed mid-segment, as a synchronous standby must: \(state)")

        let metrics = try Shell.check(["/usr/bin/curl", "-sf", "http://127.0.0.1:\(port)/metrics"]).stdout
        let flushed = try cluster.sql("SELECT pg_current_wal_flush_lsn() - '0/0'")
        #expect(metrics.contains("pgkeep_wal_connected 1"), "\(metrics)")
        #expect(metrics.contains("# TYPE pgkeep_wal_lag_bytes gauge"))
        try waitUntil("metrics to show the flushed position") {
            let now = try Shell.check(["/usr/bin/curl", "-sf", "http://127.0.0.1:\(port)/metrics"]).stdout
            return now.split(separator: "\n").contains { $0.hasPrefix("pgkeep_wal_flushed_lsn_bytes ") && UInt64($0.split(separator: " ")[1])! >= UInt64(flushed)! }
        }
        let segment = try cluster.sql("SELECT pg_walfile_name(pg_switch_wal())")
        try waitUntil("\(segment) archived", archiver: running) { try ArchiveContents(archive).has(segment) }
        let stopped = try running.stop()
        #expect(stopped.status == 0)
        for line in stopped.stderr.split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["message"] is String && object?["time"] is String && object?["level"] is String, "\(line)")
        }
        #expect(stopped.stderr.contains("\"segment\":\"\(segment)\""), "per-segment lines carry the segment: \(stopped.stderr)")

        // --endpos: stop once WAL up to there is in; the tail stays .partial.
        try cluster.sql("ALTER SYSTEM SET synchronous_standby_names = ''")
        try cluster.sql("SELECT pg_reload_conf()")
        try cluster.sql("INSERT INTO synced SELECT generate_series(1, 1000)")
        let end = try cluster.sql("SELECT pg_current_wal_flush_lsn()")
        let bounded = try PGKeepBinary.run(["receive-wal"] + cluster.connectionArguments + ["-D", archive, "--slot", "sync_archiver",
                                                                                          "--endpos", end], timeout: 60)
        #expect(bounded.status == 0, "\(bounded.stderr)")
        #expect(bounded.stderr.contains("reached end position \(end)"), "\(bounded.stderr)")

        // --no-loop: the server going away ends the run with an error instead of a retry.
        let once = try RunningArchiver(cluster.connectionArguments + ["-D", archive, "--slot", "sync_archiver", "--no-loop"])
        try waitForStreaming({ try cluster.sql($0) }, archiver: once)
        try cluster.stop()
        let ended = try once.process.wait(timeout: 60)
        #expect(ended.status == 3, "\(ended.stderr)")
        #expect(ended.stderr.contains("the server ended the WAL stream"), "\(ended.stderr)")
        #expect(!ended.stderr.contains("reconnecting"))
    }
}

/// A small tmpfs stands in for a full disk (root only; CI runs as root).
@Suite(.serialized) struct ReceiveWALDiskFullTests {
    static let canMount: Bool = {
        let probe = "/tmp/pgkeep-tmpfs-probe-\(getpid())"
        try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: probe) }
        guard (try? Shell.run(["/bin/mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe]))?.succeeded == true else { return false }
        _ = try? Shell.run(["/bin/umount", probe])
        return true
    }()

    @Test("a full disk stops the archiver without damage; it resumes once there is space",
          .enabled(if: canMount, "needs root to mount a small tmpfs"))
    func diskFull() throws {
        try withSmallArchive(major: 17) { cluster, archive in
            let archiver = try RunningArchiver(cluster.connectionArguments + ["-D", archive, "--slot", "archiver"])
            try waitForStreaming({ try cluster.sql($0) }, archiver: archiver)
            var last = ""
            try cluster.sql("CREATE TABLE f (x int)")
            for _ in 0..<4 { last = try cluster.sql("INSERT INTO f VALUES (1); SELECT pg_walfile_name(pg_switch_wal())") }
            let full = try archiver.process.wait(timeout: 60)
            #expect(full.status == 1, "\(full.stderr)")
            #expect(full.stderr.contains("No space left on device") && full.stderr.contains("free space and start the archiver again"), "\(full.stderr)")
            let kept = try ArchiveContents(archive)
            #expect(kept.complete.count == 2 && kept.partial.isEmpty, "two whole segments, no torn third: \(kept.complete) \(kept.partial)")
            try kept.verify(against: cluster.dataDirectory + "/pg_wal", through: kept.complete.keys.max()!, segmentBytes: 16 << 20)

            try Shell.check(["/bin/mount", "-o", "remount,size=200m", archive])
            let resumed = try RunningArchiver(cluster.connectionArguments + ["-D", archive, "--slot", "archiver"])
            try waitUntil("\(last) archived after the space came back", archiver: resumed) { try ArchiveContents(archive).has(last) }
            #expect(try resumed.stop().status == 0)
            try ArchiveContents(archive).verify(against: cluster.dataDirectory + "/pg_wal", through: last, segmentBytes: 16 << 20)
        }
    }

    /// Compressed, the disk fills while a segment's compressed copy is being written as it
    /// arrives (incompressible WAL: a 16 MB partial and its ~16 MB copy, beside the finished
    /// segments, in 40 MB): the copy is given up and removed, the partial stays, and the resumed
    /// archiver streams that segment again.
    @Test("compressing as segments arrive, a full disk stops the archiver without damage; it resumes once there is space",
          .enabled(if: canMount, "needs root to mount a small tmpfs"))
    func diskFullWhileCompressing() throws {
        try withSmallArchive(major: 18) { cluster, archive in
            let archiver = try RunningArchiver(cluster.connectionArguments + ["-D", archive, "--slot", "archiver", "-Z", "zstd:1"])
            try waitForStreaming({ try cluster.sql($0) }, archiver: archiver)
            // About 48 MB of random bytes, stored as they are (no TOAST compression): WAL zstd cannot shrink.
            try cluster.sql("CREATE TABLE r (b bytea); ALTER TABLE r ALTER COLUMN b SET STORAGE EXTERNAL")
            try cluster.sql("INSERT INTO r SELECT decode(string_agg(md5(random()::text), ''), 'hex') FROM generate_series(1, 3145728) g GROUP BY g % 48")
            let last = try cluster.sql("SELECT pg_walfile_name(pg_switch_wal())")
            let full = try archiver.process.wait(timeout: 120)
            #expect(full.status == 1, "\(full.stderr)")
            #expect(full.stderr.contains("No space left on device") && full.stderr.contains("free space and start the archiver again"), "\(full.stderr)")
            let names = try FileManager.default.contentsOfDirectory(atPath: archive)
            #expect(!names.contains { $0.hasSuffix(".tmp") }, "the unfinished compressed copy is removed: \(names)")
            let kept = try ArchiveContents(archive)
            // The first segment (initdb's WAL, then random bytes) fits compressed; the second's copy
            // does not, beside its partial.
            #expect(full.stderr.contains(".zst.tmp"), "the disk filled while a compressed copy was written: \(full.stderr)")
            #expect(kept.partial.count == 1 && !kept.complete.isEmpty, "\(names)")
            if let newest = kept.complete.keys.max() {
                try kept.verify(against: cluster.dataDirectory + "/pg_wal", through: newest, segmentBytes: 16 << 20)
            }

            try Shell.check(["/bin/mount", "-o", "remount,size=200m", archive])
            let resumed = try RunningArchiver(cluster.connectionArguments + ["-D", archive, "--slot", "archiver", "-Z", "zstd:1"])
            try waitUntil("\(last) archived after the space came back", archiver: resumed) { try ArchiveContents(archive).has(last) }
            #expect(try resumed.stop().status == 0)
            let after = try ArchiveContents(archive)
            #expect(after.complete.values.allSatisfy { $0.hasSuffix(".zst") })
            try after.verify(against: cluster.dataDirectory + "/pg_wal", through: last, segmentBytes: 16 << 20)
        }
    }

    /// A cluster keeping 1 GB of WAL (to compare the archive with), the slot "archiver", and a
    /// 40 MB tmpfs for the archive: room for two 16 MB segments, not three.
    private func withSmallArchive(major: Int, _ body: (TestCluster, String) throws -> Void) throws {
        var settings = TestCluster.Settings()
        settings.extraConfig = ["wal_keep_size = '1GB'"]
        let cluster = try TestCluster(major: major, settings: settings)
        defer { cluster.destroy() }
        let archive = try cluster.makeDirectory("small")
        try Shell.check(["/bin/mount", "-t", "tmpfs", "-o", "size=40m,mode=0700", "tmpfs", archive])
        defer { _ = try? Shell.run(["/bin/umount", "-l", archive]) }
        try PGKeepBinary.run(["receive-wal"] + cluster.connectionArguments + ["--slot", "archiver", "--create-slot"]).requireSuccess()
        try body(cluster, archive)
    }
}
