import Foundation
import Testing
import TestSupport

/// `pgkeep receive-wal` against real servers: the archive it builds must hold every segment from
/// its first to its last, byte-identical to the server's own pg_wal, whatever happens meanwhile.
@Suite(.serialized) struct ReceiveWALTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var major: Int
        var segmentMB: Int
        var compression: String?
        var testDescription: String { "PG \(major), \(segmentMB) MB segments, \(compression ?? "uncompressed")" }
    }

    /// Keep every segment on the server, so the archive can be compared with it.
    static let keepWAL = ["wal_keep_size = '8GB'", "max_wal_size = '1GB'"]

    @Test("archives without a gap through kill -9, a server restart and a dropped connection", arguments: [
        Case(major: 14, segmentMB: 1, compression: nil), Case(major: 15, segmentMB: 16, compression: "lz4"),
        Case(major: 16, segmentMB: 16, compression: "gzip"), Case(major: 17, segmentMB: 64, compression: nil),
        Case(major: 18, segmentMB: 16, compression: "zstd:5"),
    ])
    func survivesKillRestartAndDisconnect(_ test: Case) throws {
        var settings = TestCluster.Settings()
        settings.walSegmentSizeMB = test.segmentMB
        settings.extraConfig = Self.keepWAL
        let cluster = try TestCluster(major: test.major, settings: settings)
        defer { cluster.destroy() }
        let archive = try cluster.makeDirectory("archive")
        let connection = cluster.connectionArguments
        try PGKeepBinary.run(["receive-wal"] + connection + ["--slot", "archiver", "--create-slot"]).requireSuccess()
        let firstSegment = try cluster.sql("SELECT pg_walfile_name(restart_lsn) FROM pg_replication_slots WHERE slot_name = 'archiver'")
        let arguments = connection + ["-D", archive, "--slot", "archiver", "--reconnect-max-delay", "1", "-v"]
            + (test.compression.map { ["--compress", $0] } ?? [])

        var archiver = try RunningArchiver(arguments)
        try waitForStreaming({ try cluster.sql($0) }, archiver: archiver)
        let pgbench = cluster.installation.tool("pgbench")
        try Shell.check([pgbench, "-i", "-q", "-s", "3"] + connection + ["postgres"])
        let load = try Shell.spawn([pgbench, "-n", "-c", "2", "-T", "5"] + connection + ["postgres"])

        // kill -9 mid-segment, under load; a new archiver resumes from the archive.
        usleep(1_500_000)
        archiver.kill()
        archiver = try RunningArchiver(arguments)
        try load.wait(timeout: 60).requireSuccess()
        try waitForStreaming({ try cluster.sql($0) }, archiver: archiver)

        // The server restarts under the running archiver: it must reconnect by itself.
        try cluster.stop()
        try cluster.start()
        try waitForStreaming({ try cluster.sql($0) }, archiver: archiver, timeout: 90)

        // The connection is cut from the server's side.
        try cluster.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = 'pgkeep_receivewal'")
        try Shell.check([pgbench, "-n", "-c", "2", "-T", "2"] + connection + ["postgres"])
        try waitForStreaming({ try cluster.sql($0) }, archiver: archiver, timeout: 90)

        let last = try cluster.sql("SELECT pg_walfile_name(pg_switch_wal())")
        let contentsAt = { try ArchiveContents(archive) }
        try waitUntil("\(last) in the archive", archiver: archiver) { try contentsAt().has(last) }
        let result = try archiver.stop()
        #expect(result.status == 0, "SIGTERM is a clean stop: \(result.stderr)")
        #expect(result.stderr.contains("reconnecting"), "the archiver noticed the restart and the cut: \(result.stderr)")

        let contents = try ArchiveContents(archive)
        let compared = try contents.verify(against: cluster.dataDirectory + "/pg_wal", through: last,
                                           segmentBytes: UInt64(test.segmentMB) << 20)
        #expect(contents.complete.keys.min() == firstSegment, "the archive starts where the slot did")
        #expect(compared >= 2)
        if let compression = test.compression?.split(separator: ":").first {
            let suffix = ["lz4": ".lz4", "gzip": ".gz", "zstd": ".zst"][String(compression)]!
            #expect(contents.complete.values.allSatisfy { $0.hasSuffix(suffix) })
        }
    }

    @Test("follows a promoted standby onto its new timeline", arguments: [
        (14, true), (15, false), (16, true), (17, false), (18, true),
    ])
    func followsPromotion(major: Int, archiverRunsDuringPromotion: Bool) throws {
        var settings = TestCluster.Settings()
        settings.extraConfig = Self.keepWAL
        let primary = try TestCluster(major: major, settings: settings)
        defer { primary.destroy() }
        let standbyData = try primary.makeDirectory("standby")
        // The standby is made by pgkeep backup -R: its primary_conninfo must suit this server's own
        // libpq (pg_basebackup 16/17 here write options their older walreceiver refuses).
        try FileManager.default.removeItem(atPath: standbyData)
        try PGKeepBinary.run(["backup"] + primary.connectionArguments + ["-D", standbyData, "-R", "-c", "fast"]).requireSuccess()
        let standby = try RestoredServer(installation: primary.installation, dataDirectory: standbyData, root: primary.root)
        defer { standby.stop() }
        let archive = try primary.makeDirectory("archive")
        let arguments = ["-h", standby.socket, "-p", String(standby.port), "-U", "postgres", "-D", archive,
                         "--reconnect-max-delay", "1", "-v"]

        var archiver = try RunningArchiver(arguments)
        try waitForStreaming({ try standby.sql($0) }, archiver: archiver)
        try primary.sql("CREATE TABLE before_promotion AS SELECT g FROM generate_series(1, 50000) g")
        let switched = try primary.sql("SELECT pg_walfile_name(pg_switch_wal())")
        try waitUntil("\(switched) archived from the standby", archiver: archiver) { try ArchiveContents(archive).has(switched) }
        var firstRun = ""
        if !archiverRunsDuringPromotion { firstRun = try archiver.stop().stderr }

        try Shell.check([primary.installation.tool("pg_ctl"), "-D", standbyData, "-w", "promote"], asPostgres: true)
        try primary.stop()
        try waitUntil("the standby to be promoted") { try standby.sql("SELECT pg_is_in_recovery()") == "f" }
        try standby.sql("CREATE TABLE after_promotion AS SELECT g FROM generate_series(1, 50000) g")
        let onNewTimeline = try standby.sql("SELECT pg_walfile_name(pg_switch_wal())")
        #expect(onNewTimeline.hasPrefix("00000002"))
        if !archiverRunsDuringPromotion { archiver = try RunningArchiver(arguments) }
        try waitUntil("\(onNewTimeline) archived", archiver: archiver) { try ArchiveContents(archive).has(onNewTimeline) }

        // A restart on the new timeline resumes there.
        let secondRun = try archiver.stop()
        #expect(secondRun.status == 0, "\(secondRun.stderr)")
        archiver = try RunningArchiver(arguments)
        try standby.sql("INSERT INTO after_promotion SELECT g FROM generate_series(1, 50000) g")
        let last = try standby.sql("SELECT pg_walfile_name(pg_switch_wal())")
        try waitUntil("\(last) archived", archiver: archiver) { try ArchiveContents(archive).has(last) }
        let thirdRun = try archiver.stop()

        let contents = try ArchiveContents(archive)
        #expect(contents.history == ["00000002.history"])
        let history = try String(contentsOfFile: archive + "/00000002.history", encoding: .utf8)
        #expect(history == (try String(contentsOfFile: standbyData + "/pg_wal/00000002.history", encoding: .utf8)))
        try contents.verify(against: standbyData + "/pg_wal", through: last, segmentBytes: 16 << 20)

        // Where timeline 1 ended decides which path the archiver took; both must be seamless.
        let switchpoint = history.split(separator: "\t")[1]
        let log = firstRun + secondRun.stderr + thirdRun.stderr
        if archiverRunsDuringPromotion {
            #expect(log.contains("timeline 1 ended at \(switchpoint); following timeline 2"), "\(log)")
        } else if switchpoint.hasSuffix("000000") {
            // Restarted exactly at the end of timeline 1: straight onto timeline 2, no loop.
            #expect(log.contains("past the end of timeline 1"), "\(log)")
        }
        #expect(!log.contains("error"), "\(log)")
    }
}

extension CommandResult {
    func requireSuccess() throws {
        guard succeeded else { throw TestFailure("command failed with \(status):\n\(output)") }
    }
}
