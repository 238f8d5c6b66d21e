import Foundation
import Testing
import TestSupport

/// A server and a client that speak German (PostgreSQL 15 from Debian ships the translations):
/// every decision — stop or retry, which hint, which exit status — must come out as with an
/// English server, because pgkeep decides by SQLSTATE and libpq's state, never by words.
@Suite("German server and client messages", .serialized)
struct LocalizedServerTests {
    static let german = ["LANG": "de_DE.UTF-8", "LC_ALL": "de_DE.UTF-8", "LANGUAGE": "de"]

    /// A PG 15 cluster whose messages are German, with a password role and a role without
    /// REPLICATION.
    static func germanCluster() throws -> TestCluster {
        var settings = TestCluster.Settings()
        settings.extraConfig = ["lc_messages = 'de_DE.UTF-8'", "wal_keep_size = '4GB'"]
        settings.extraHBA = ["local replication pwuser scram-sha-256", "local all pwuser scram-sha-256"]
        let cluster = try TestCluster(major: 15, settings: settings)
        do {
            try cluster.sql("""
                SET password_encryption = 'scram-sha-256';
                CREATE ROLE pwuser LOGIN REPLICATION PASSWORD 'right';
                CREATE ROLE norepl LOGIN;
                """)
        } catch {
            cluster.destroy()
            throw error
        }
        return cluster
    }

    func connection(_ cluster: TestCluster, user: String) -> [String] {
        ["-h", cluster.socketDirectory, "-p", String(cluster.port), "-U", user, "-w"]
    }

    @Test("wrong password: backup and receive-wal stop at once with exit 3; no REPLICATION: the English hint")
    func refusals() throws {
        let cluster = try Self.germanCluster()
        defer { cluster.destroy() }
        var environment = Self.german
        environment["PGPASSWORD"] = "wrong"

        let started = Date()
        let backup = try PGKeepBinary.run(["backup"] + connection(cluster, user: "pwuser") + ["-D", cluster.root + "/b1"],
                                          environment: environment, timeout: 60)
        #expect(backup.status == 3, "\(backup.stderr)")
        #expect(backup.stderr.contains("Passwort-Authentifizierung"), "the server spoke German: \(backup.stderr)")
        #expect(backup.stderr.contains("check the user and password"), "\(backup.stderr)")
        #expect(!backup.output.contains("wrong"), "the password is never printed")

        let archive = try PGKeepBinary.run(["receive-wal"] + connection(cluster, user: "pwuser") + ["-D", cluster.root + "/archive"],
                                           environment: environment, timeout: 60)
        #expect(archive.status == 3, "\(archive.stderr)")
        #expect(!archive.stderr.contains("reconnecting"), "no retry for a wrong password: \(archive.stderr)")
        #expect(Date().timeIntervalSince(started) < 20, "both refused at once")

        for command in [["backup", "-D", cluster.root + "/b2"], ["receive-wal", "-D", cluster.root + "/archive2"]] {
            let result = try PGKeepBinary.run([command[0]] + connection(cluster, user: "norepl") + Array(command.dropFirst()),
                                              environment: Self.german, timeout: 60)
            #expect(result.status == 3, "\(command[0]): \(result.stderr)")
            #expect(result.stderr.contains("ALTER ROLE <name> REPLICATION"), "\(command[0]): \(result.stderr)")
            #expect(!result.stderr.contains("reconnecting"), "\(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: cluster.root + "/b1"), "nothing written for a refused backup")
    }

    @Test("a German server restarting under the archiver: it reconnects and archives on without a gap")
    func archiverSurvivesRestart() throws {
        let cluster = try Self.germanCluster()
        defer { cluster.destroy() }
        let archive = try cluster.makeDirectory("archive")
        let superuser = cluster.connectionArguments
        try PGKeepBinary.run(["receive-wal"] + superuser + ["--slot", "archiver", "--create-slot"], environment: Self.german).requireSuccess()
        let archiver = try RunningArchiver(superuser + ["-D", archive, "--slot", "archiver", "--reconnect-max-delay", "1", "-v"],
                                           environment: Self.german)
        try waitForStreaming({ try cluster.sql($0) }, archiver: archiver)
        try cluster.sql("CREATE TABLE t AS SELECT g FROM generate_series(1, 100000) g")
        try cluster.sql("SELECT pg_switch_wal()")

        // A fast shutdown terminates the walsender (57P01, in German), then refuses connections
        // while it stops and starts (57P03): both are worth retrying.
        try cluster.stop()
        usleep(1_500_000)
        try cluster.start()
        try waitForStreaming({ try cluster.sql($0) }, archiver: archiver, timeout: 90)
        try cluster.sql("INSERT INTO t SELECT g FROM generate_series(1, 100000) g")
        let last = try cluster.sql("SELECT pg_walfile_name(pg_switch_wal())")
        try waitUntil("the archiver to archive \(last)", timeout: 60, archiver: archiver) { try ArchiveContents(archive).has(last) }
        let stopped = try archiver.stop()
        #expect(stopped.status == 0, "\(stopped.stderr)")
        #expect(stopped.stderr.contains("reconnecting"), "it did reconnect: \(stopped.stderr)")
        try ArchiveContents(archive).verify(against: cluster.dataDirectory + "/pg_wal", through: last, segmentBytes: 16 << 20)
    }
}
