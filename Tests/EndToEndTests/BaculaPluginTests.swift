import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// pgkeep-fd.so in Debian's real Bacula 9.6: Director, Storage and File daemons on loopback with
/// a SQLite catalog (tools/bacula-lab.sh), jobs run and restored through bconsole.
@Suite(.serialized, .enabled(if: BaculaLab.isInstalled, "Bacula's daemons are not installed (tools/install-servers.sh installs them)"))
struct BaculaPluginTests {
    static func pluginLine(_ cluster: TestCluster, mode: String, service: String, lab: String, extra: String = "") -> String {
        "Plugin = \"pgkeep: mode=\(mode) service=\(service) conninfo='host=\(cluster.socketDirectory) port=\(cluster.port) user=postgres dbname=postgres' "
            + "state_dir=\(lab)/state bin_dir=\(cluster.installation.bin) \(extra)\""
    }

    static func job(_ name: String, fileset: String, plugin: String, accurate: Bool = true) -> String {
        """
        FileSet {
          Name = "\(fileset)"
          Include {
            Options { signature = MD5 }
            \(plugin)
          }
        }
        Job {
          Name = "\(name)"
          Type = Backup
          Level = Full
          Client = lab-fd
          FileSet = "\(fileset)"
          Storage = File
          Pool = Default
          Messages = Standard
          Accurate = \(accurate ? "yes" : "no")
        }

        """
    }

    // MARK: PITR

    @Test("PITR: Full → Incremental → Differential → Incremental under pgbench, restored from Bacula into a directory that starts with every marker", arguments: [15, 17])
    func pitrChain(major: Int) throws {
        var settings = TestCluster.Settings()
        if major >= 17 { settings.extraConfig = ["summarize_wal = on"] }
        let cluster = try TestCluster(major: major, settings: settings)
        defer { cluster.destroy() }
        try cluster.sql("CREATE TABLE markers (id int PRIMARY KEY)")
        try Shell.check([cluster.installation.tool("pgbench"), "-i", "-q", "-s", "2"] + cluster.connectionArguments + ["postgres"])
        let labRoot = cluster.root + "/lab"
        let lab = try BaculaLab(root: labRoot, jobs: Self.job("pg", fileset: "pg", plugin: Self.pluginLine(cluster, mode: "pitr", service: "main", lab: labRoot, extra: "fast_backup")))
        defer { lab.stop() }
        let load = try Shell.spawn([cluster.installation.tool("pgbench"), "-n", "-c", "2", "-T", "600"] + cluster.connectionArguments + ["postgres"])
        defer { load.signal(SIGTERM); _ = try? load.wait(timeout: 30) }

        var outcomes: [BaculaLab.Outcome] = []
        for (index, level) in ["Full", "Incremental", "Differential", "Incremental"].enumerated() {
            // Each marker is committed before its job switches the WAL: every job's restore holds it.
            try cluster.sql("INSERT INTO markers VALUES (\(index + 1))")
            let outcome = try lab.backup("pg", level: level)
            #expect(outcome.ok, "\(level): \(outcome)")
            #expect(outcome.termination == "Backup OK", "\(level): \(outcome.termination)")
            outcomes.append(outcome)
        }
        let (full, incremental, differential) = (outcomes[0], outcomes[1], outcomes[2])
        #expect(full.log.contains("pgkeep: full backup"), "\(full.log)")
        #expect(incremental.log.contains("pgkeep: incremental backup"), "\(incremental.log)")
        #expect(differential.log.contains("pgkeep: differential backup"), "\(differential.log)")
        // An Incremental is WAL alone; a Differential leaves out what did not change (Accurate: marked seen).
        #expect(incremental.files < 20, "\(incremental.files) files in an incremental")
        #expect(differential.bytes < full.bytes, "differential \(differential.bytes) bytes, full \(full.bytes)")
        load.signal(SIGTERM)
        _ = try? load.wait(timeout: 30)

        let target = labRoot + "/restores/pitr"
        let restore = try lab.restore(fileset: "pg", whereDirectory: target)
        #expect(restore.ok && restore.termination == "Restore OK", "\(restore)")
        #expect(restore.log.contains("pg_ctl -D \(target)/main/data start"), "the job log says how to start it:\n\(restore.log)")
        let restored = target + "/main"
        #expect(FileManager.default.fileExists(atPath: restored + "/wal"))
        let settingsText = try String(contentsOfFile: restored + "/data/postgresql.auto.conf", encoding: .utf8)
        #expect(settingsText.contains("wal-fetch") && settingsText.contains(restored + "/wal"), "\(settingsText)")
        try chownToPostgres(restored)
        let server = try RestoredServer(installation: cluster.installation, dataDirectory: restored + "/data", root: cluster.root)
        defer { server.stop() }
        var inRecovery = "t"
        for _ in 0..<300 where inRecovery != "f" {
            inRecovery = (try? server.sql("SELECT pg_is_in_recovery()")) ?? "t"
            if inRecovery != "f" { usleep(100_000) }
        }
        #expect(inRecovery == "f", "the restored server promoted")
        #expect(try server.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM markers") == "1,2,3,4")
        #expect(try server.sql("SELECT count(*) FROM pgbench_accounts") == "200000")
        let amcheck = try server.amcheck()
        #expect(amcheck.succeeded, "\(amcheck.output)")
        #expect(try server.visibilityMapErrors() == "0")
    }

    // MARK: Estimate, failures, cancel

    @Test("estimate lists the files with sizes; a server that is down fails the job fatally; cancel and a killed backend leave no process")
    func estimateFailuresCancel() throws {
        var settings = TestCluster.Settings()
        settings.extraConfig = ["summarize_wal = on"]
        let cluster = try TestCluster(major: 17, settings: settings)
        defer { cluster.destroy() }
        try cluster.sql("CREATE TABLE locked (id int)")
        let labRoot = cluster.root + "/lab"
        let jobs = Self.job("pg", fileset: "pg", plugin: Self.pluginLine(cluster, mode: "pitr", service: "main", lab: labRoot, extra: "fast_backup"))
            + Self.job("dump", fileset: "dump", plugin: Self.pluginLine(cluster, mode: "dump", service: "dump", lab: labRoot, extra: "abort_on_error"))
            + Self.job("typo", fileset: "typo", plugin: "Plugin = \"pgkeep: mode=pitr compress=zstd\"")
        let lab = try BaculaLab(root: labRoot, jobs: jobs)
        defer { lab.stop() }

        // Estimate: the data directory's files with their sizes, quickly, and no backup taken.
        let started = Date()
        let listing = try lab.estimate("pg", level: "Full")
        #expect(Date().timeIntervalSince(started) < 60)
        #expect(listing.contains("/@PG/main/data/PG_VERSION"), "\(listing.prefix(3000))")
        #expect(listing.contains("/@PG/main/data/global/pg_control"))
        #expect(listing.contains("/@PG/main/wal/"))
        #expect(!listing.contains("postmaster.pid"))
        #expect(try cluster.sql("SELECT count(*) FROM pg_replication_slots") == "0", "an estimate creates nothing")
        let dumpListing = try lab.estimate("dump", level: "Full")
        #expect(dumpListing.contains("/@PG/dump/postgres/data.sqlc"), "\(dumpListing.prefix(2000))")

        // An unknown plugin option ends the job, named.
        let typo = try lab.backup("typo", level: "Full")
        #expect(typo.status != "T", "\(typo)")
        #expect(typo.log.contains("Fatal error") && typo.log.contains("unknown plugin option compress"), "\(typo.log)")

        // Cancel: a dump waiting for a lock; the job is cancelled and nothing it started is left.
        let holder = try Shell.spawn([cluster.installation.tool("psql"), "-X"] + cluster.connectionArguments
                                     + ["-d", "postgres", "-c", "BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600);"])
        defer { holder.signal(SIGTERM); _ = try? holder.wait(timeout: 30) }
        let queued = try BaculaLab.queuedJobID(try lab.console("run job=dump level=Full yes"))
        #expect(try waitFor { Self.processes(matching: "pg_dump").count > 0 }, "pg_dump started")
        try lab.console("cancel jobid=\(queued) yes")
        let cancelled = try lab.outcome(of: queued)
        #expect(cancelled.status == "A", "\(cancelled)")
        #expect(try waitFor { Self.processes(matching: "bacula backend").isEmpty && Self.processes(matching: "pg_dump").isEmpty },
                "left behind: \(Self.processes(matching: "bacula backend") + Self.processes(matching: "pg_dump"))")

        // A backend killed mid-job: fatal, and its pg_dump goes too.
        let second = try BaculaLab.queuedJobID(try lab.console("run job=dump level=Full yes"))
        #expect(try waitFor { Self.processes(matching: "pg_dump").count > 0 })
        for pid in Self.processes(matching: "bacula backend") { kill(pid, SIGKILL) }
        let killed = try lab.outcome(of: second)
        #expect(killed.status != "T", "\(killed)")
        #expect(killed.log.contains("Fatal error"), "\(killed.log)")
        #expect(try waitFor { Self.processes(matching: "pg_dump").isEmpty }, "pg_dump left behind")
        holder.signal(SIGTERM)

        // The server down: a fatal error (never "OK -- with warnings"), in the seed plugin's words.
        try cluster.stop()
        let down = try lab.backup("pg", level: "Full")
        #expect(down.status == "f" || down.status == "E", "\(down)")
        #expect(down.log.contains("Fatal error") && down.log.contains("Can't reach PostgreSQL server to get database config."), "\(down.log)")
        #expect(down.termination.contains("Error"), "\(down.termination)")
        let dumpDown = try lab.backup("dump", level: "Full")
        #expect(dumpDown.log.contains("Fatal error") && dumpDown.log.contains("Can't reach PostgreSQL server"), "\(dumpDown.log)")
    }

    // MARK: Dump

    @Test("dump mode: Full, a database restored under a new name and compared, replace=never refused, where=/dir files, roles restored", arguments: [15, 17])
    func dumpMode(major: Int) throws {
        let cluster = try TestCluster(major: major)
        defer { cluster.destroy() }
        try cluster.sql("CREATE ROLE app_owner LOGIN PASSWORD 'secret'")
        try cluster.sql("CREATE ROLE lab_auditor NOLOGIN")
        try cluster.sql("CREATE DATABASE app OWNER app_owner")
        try cluster.sql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g; ALTER TABLE t OWNER TO app_owner",
                        database: "app")
        let labRoot = cluster.root + "/lab"
        let lab = try BaculaLab(root: labRoot, jobs: Self.job("dump", fileset: "dump", plugin: Self.pluginLine(cluster, mode: "dump", service: "db", lab: labRoot),
                                                          accurate: false))
        defer { lab.stop() }

        let full = try lab.backup("dump", level: "Full")
        #expect(full.ok && full.termination == "Backup OK", "\(full)")
        let files = try lab.console("list files jobid=\(full.jobID)")
        for name in ["roles.sql", "tablespaces.sql", "postgresql.conf", "pg_hba.conf", "pg_ident.conf", "app/createdb.sql", "app/schema.sql", "app/data.sqlc"] {
            #expect(files.contains("/@PG/db/" + name), "\(name) in \(files)")
        }
        let incremental = try lab.backup("dump", level: "Incremental")
        #expect(incremental.ok, "\(incremental)")
        #expect(incremental.log.contains("a dump is always whole"), "\(incremental.log)")

        // One database under a new name: its createdb.sql and data.sqlc selected.
        func restoreApp(as name: String, replace: String) throws -> BaculaLab.Outcome {
            let output = try lab.console("""
                restore client=lab-fd jobid=\(full.jobID) where=\(name) replace=\(replace) yes
                cd /@PG/db/app/
                mark createdb.sql
                mark data.sqlc
                done
                wait
                """)
            return try lab.outcome(of: try BaculaLab.queuedJobID(output))
        }
        let copy = try restoreApp(as: "app_copy", replace: "always")
        #expect(copy.ok, "\(copy)")
        let digest = "SELECT count(*) || ':' || md5(string_agg(id || v, ',' ORDER BY id)) FROM t"
        #expect(try cluster.sql(digest, database: "app_copy") == (try cluster.sql(digest, database: "app")))
        #expect(try cluster.sql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app_copy'") == "app_owner")

        // replace=never: refused, fatally, and the database is untouched.
        try cluster.sql("INSERT INTO t VALUES (-1, 'after')", database: "app_copy")
        let never = try restoreApp(as: "app_copy", replace: "never")
        #expect(never.status != "T", "\(never)")
        #expect(never.log.contains("Fatal error") && never.log.contains("app_copy exists"), "\(never.log)")
        #expect(try cluster.sql("SELECT count(*) FROM t WHERE id = -1", database: "app_copy") == "1")

        // where=/dir: plain files for pg_restore by hand.
        let directory = labRoot + "/restores/files"
        let files2 = try lab.restore(fileset: "dump", whereDirectory: directory, jobIDs: [full.jobID])
        #expect(files2.ok, "\(files2)")
        let listing = try Shell.run([cluster.installation.tool("pg_restore"), "-l", directory + "/db/app/data.sqlc"])
        #expect(listing.succeeded && listing.stdout.contains("TABLE DATA public t"), "\(listing.output)")

        // Roles: roles.sql alone, into the original cluster (where=/).
        try cluster.sql("DROP ROLE lab_auditor")
        let roles = try lab.console("""
            restore client=lab-fd jobid=\(full.jobID) where=/ yes
            cd /@PG/db/
            mark roles.sql
            done
            wait
            """)
        let rolesOutcome = try lab.outcome(of: try BaculaLab.queuedJobID(roles))
        #expect(rolesOutcome.ok, "\(rolesOutcome)")
        #expect(try cluster.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'lab_auditor'") == "1")
    }

    // MARK: Helpers

    /// Process ids whose command line contains `text` (not this test's own).
    static func processes(matching text: String) -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { entry -> pid_t? in
            guard let pid = pid_t(entry), pid != getpid(),
                  let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return nil }
            let line = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            return line.contains(text) && !line.contains("swift-test") && !line.contains("xctest") ? pid : nil
        }
    }

    func waitFor(seconds: Double = 60, _ condition: () throws -> Bool) throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(200_000)
        }
        return try condition()
    }
}
