import Foundation
import Testing
import TestSupport

/// Bad conditions: each must give a clear error and leave nothing that looks like a backup.
@Suite("pgkeep backup refuses or fails cleanly", .serialized)
struct BackupFailureTests {
    @Test("server unreachable: connection error, exit 3, nothing created")
    func unreachable() throws {
        let port = try freePort()
        let target = "/tmp/pgkeep-tests/unreachable-\(port)"
        let result = try PGKeepBinary.run(["backup", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-D", target, "-w"])
        #expect(result.status == 3)
        #expect(result.stderr.contains("server unreachable"), "\(result.stderr)")
        #expect(!isFile(target))
    }

    @Test("role without REPLICATION, wrong password, full WAL senders, and a non-empty target", arguments: [14, 18])
    func refusals(major: Int) throws {
        var settings = TestCluster.Settings()
        settings.maxWalSenders = 1
        settings.extraConfig = ["password_encryption = 'scram-sha-256'"]
        settings.extraHBA = ["host all,replication all 127.0.0.1/32 scram-sha-256"]
        let cluster = try TestCluster(major: major, settings: settings)
        defer { cluster.destroy() }
        try cluster.sql("CREATE ROLE plain LOGIN PASSWORD 'secret'; CREATE ROLE backup LOGIN REPLICATION PASSWORD 'secret'")

        let tcp = ["-h", "127.0.0.1", "-p", String(cluster.port), "-w"]
        let noReplication = try PGKeepBinary.run(["backup", "-D", cluster.root + "/b1"] + tcp + ["-U", "plain"],
                                                 environment: ["PGPASSWORD": "secret"])
        #expect(noReplication.status == 3)
        #expect(noReplication.stderr.contains("ALTER ROLE"), "\(noReplication.stderr)")
        #expect(!isFile(cluster.root + "/b1"))

        let wrongPassword = try PGKeepBinary.run(["backup", "-D", cluster.root + "/b2"] + tcp + ["-U", "backup"],
                                                 environment: ["PGPASSWORD": "wrong"])
        #expect(wrongPassword.status == 3)
        #expect(wrongPassword.stderr.contains("authentication failed"), "\(wrongPassword.stderr)")
        #expect(!wrongPassword.output.contains("wrong"), "the password must never be printed")
        #expect(!isFile(cluster.root + "/b2"))

        // max_wal_senders = 1: the backup connection gets the only sender, the WAL stream none.
        let noSender = try PGKeepBinary.run(["backup", "-D", cluster.root + "/b3", "-c", "fast"] + tcp + ["-U", "backup"],
                                            environment: ["PGPASSWORD": "secret"])
        #expect(noSender.status != 0)
        #expect(noSender.stderr.contains("max_wal_senders"), "\(noSender.stderr)")
        #expect(!isFile(cluster.root + "/b3"), "a failed backup must be removed")

        // The right password from ~/.pgpass-style PGPASSFILE, and -X fetch needs only one sender.
        let passfile = cluster.root + "/pgpass"
        try "127.0.0.1:\(cluster.port):*:backup:secret\n".write(toFile: passfile, atomically: true, encoding: .utf8)
        chmod(passfile, 0o600)
        let fetched = try PGKeepBinary.run(["backup", "-D", cluster.root + "/b4", "-X", "fetch", "-c", "fast"] + tcp + ["-U", "backup"],
                                           environment: ["PGPASSFILE": passfile])
        #expect(fetched.succeeded, "\(fetched.output)")

        // A service file names host, port and user; the password still comes from the passfile.
        let services = cluster.root + "/pg_service.conf"
        try "[backups]\nhost=127.0.0.1\nport=\(cluster.port)\nuser=backup\n".write(toFile: services, atomically: true, encoding: .utf8)
        let viaService = try PGKeepBinary.run(["backup", "-d", "service=backups", "-D", cluster.root + "/b5", "-X", "fetch", "-c", "fast", "-w"],
                                              environment: ["PGSERVICEFILE": services, "PGPASSFILE": passfile])
        #expect(viaService.succeeded, "\(viaService.output)")

        // A non-empty target is refused and left as it was.
        let occupied = try cluster.makeDirectory("occupied")
        try "keep me".write(toFile: occupied + "/precious", atomically: true, encoding: .utf8)
        let refused = try PGKeepBinary.run(["backup", "-D", occupied, "-c", "fast"] + cluster.connectionArguments)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("not empty"), "\(refused.stderr)")
        #expect(try String(contentsOfFile: occupied + "/precious", encoding: .utf8) == "keep me")
    }

    @Test("wal_level = minimal: clear error naming wal_level, nothing created")
    func walLevelMinimal() throws {
        var settings = TestCluster.Settings()
        settings.walLevel = "minimal"
        let cluster = try TestCluster(major: 16, settings: settings)
        defer { cluster.destroy() }
        let result = try PGKeepBinary.run(["backup", "-D", cluster.root + "/b"] + cluster.connectionArguments)
        #expect(result.status == 3)
        #expect(result.stderr.contains("wal_level"), "\(result.stderr)")
        #expect(!isFile(cluster.root + "/b"))
    }

    @Test("a data page with a bad checksum fails the backup, names the file, and leaves nothing", arguments: [14, 17])
    func checksumFailure(major: Int) throws {
        let cluster = try TestCluster(major: major)
        defer { cluster.destroy() }
        try cluster.sql("CREATE TABLE victim AS SELECT g AS id, repeat('v', 100) AS filler FROM generate_series(1, 1000) g; CHECKPOINT")
        let file = try cluster.sql("SELECT pg_relation_filepath('victim')")
        // Flip bytes in the tuple area of blocks 0-5 on disk; the page headers (and so their LSNs)
        // stay. The server reports five pages, then only the file's and the backup's totals.
        let path = cluster.dataDirectory + "/" + file
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        for block in 0..<6 {
            try handle.seek(toOffset: UInt64(block * 8192 + 4000))
            try handle.write(contentsOf: Data(repeating: 0x5A, count: 64))
        }
        try handle.close()

        let target = cluster.root + "/backup"
        let result = try PGKeepBinary.run(["backup", "-D", target, "-c", "fast"] + cluster.connectionArguments)
        #expect(result.status == 1)
        #expect(result.stderr.contains("checksum"), "\(result.stderr)")
        #expect(result.stderr.contains(file), "the failing file is named: \(result.stderr)")
        #expect(result.stderr.contains("the server found 6 data page checksum failures"), "the server's own count: \(result.stderr)")
        #expect(result.stderr.contains("WARNING:  checksum verification failed in file"), "shown as PostgreSQL shows them: \(result.stderr)")
        #expect(!isFile(target))
    }

    @Test("SIGTERM mid-backup removes the partial backup (kept with --no-clean); SIGKILL leaves one without backup_manifest")
    func interrupted() throws {
        let source = try SourceCluster(major: 17, scale: 3)
        defer { source.cluster.destroy() }
        let cluster = source.cluster
        for (signal, name, extra) in [(SIGTERM, "term", []), (SIGTERM, "term-no-clean", ["--no-clean"]), (SIGKILL, "kill", [])] {
            let target = cluster.root + "/interrupted-\(name)"
            // 2 MB/s: the backup takes long enough to be interrupted halfway.
            let process = try Shell.spawn([PGKeepBinary.path, "backup", "-D", target, "-T", "\(source.tablespace)=\(cluster.root)/ts-\(name)",
                                           "-c", "fast", "-r", "2048k"] + extra + cluster.connectionArguments)
            // The tablespace's archive comes first on 15+: wait until it is being written.
            let tablespaceCopy = cluster.root + "/ts-\(name)"
            for _ in 0..<200 where (try? FileManager.default.contentsOfDirectory(atPath: tablespaceCopy))?.isEmpty ?? true {
                Thread.sleep(forTimeInterval: 0.05)
            }
            Thread.sleep(forTimeInterval: 0.5)
            process.signal(signal)
            let result = try process.wait()
            #expect(result.status != 0)
            #expect(!isFile(target + "/backup_manifest"), "an interrupted backup must never look complete")
            if signal == SIGTERM && extra.isEmpty {
                #expect(!isFile(target), "SIGTERM: pgkeep removes what it wrote")
                #expect(!isFile(tablespaceCopy))
            } else {
                #expect(isFile(target + "/pg_wal"), "\(name): what was written is kept, for inspection")
                #expect(!(try FileManager.default.contentsOfDirectory(atPath: tablespaceCopy)).isEmpty)
            }
            if signal == SIGTERM { #expect(result.stderr.contains("backup cancelled"), "\(result.stderr)") }
            if !extra.isEmpty { #expect(result.stderr.contains("keeping the incomplete backup"), "\(result.stderr)") }
        }
    }
}
