import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `pgkeep check` against real servers with each problem, and the Debian package installed for real.
@Suite(.serialized) struct OperationsTests {
    static func check(_ cluster: TestCluster, user: String = "postgres", extra: [String] = []) throws -> (status: Int32, items: [[String: Any]]) {
        let result = try PGKeepBinary.run(["check", "-d", "host=\(cluster.socketDirectory) port=\(cluster.port) user=\(user) dbname=postgres", "--json"] + extra)
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
        return (result.status, json["items"] as? [[String: Any]] ?? [])
    }

    static func item(_ items: [[String: Any]], _ name: String) -> (status: String, fix: String) {
        let found = items.first { $0["name"] as? String == name }
        return (found?["status"] as? String ?? "missing", found?["fix"] as? String ?? "")
    }

    @Test("check: a ready server passes; each problem is named with its fix (PG 17)")
    func check() throws {
        var settings = TestCluster.Settings()
        settings.extraConfig = ["summarize_wal = on"]
        let cluster = try TestCluster(major: 17, settings: settings)
        defer { cluster.destroy() }
        var (status, items) = try Self.check(cluster)
        #expect(status == 0, "\(items)")
        #expect(items.allSatisfy { $0["status"] as? String == "ok" }, "\(items)")

        // A role without REPLICATION (and without EXECUTE on pg_switch_wal).
        try cluster.sql("CREATE ROLE plain LOGIN")
        (status, items) = try Self.check(cluster, user: "plain")
        #expect(status == 1)
        #expect(Self.item(items, "replication role") == ("failed", "ALTER ROLE plain REPLICATION;"))
        #expect(Self.item(items, "pg_switch_wal()").fix == "GRANT EXECUTE ON FUNCTION pg_catalog.pg_switch_wal() TO plain;")

        // No pg_hba.conf line for replication: only the replication connection fails.
        try cluster.sql("CREATE ROLE norepl LOGIN REPLICATION")
        try append("host all all 127.0.0.1/32 trust\n", to: cluster.dataDirectory + "/pg_hba.conf")
        let hba = try String(contentsOfFile: cluster.dataDirectory + "/pg_hba.conf", encoding: .utf8)
        let withoutReplication = hba.split(separator: "\n").filter { !($0.contains("replication") && !$0.hasPrefix("#")) }.joined(separator: "\n") + "\n"
        try withoutReplication.write(toFile: cluster.dataDirectory + "/pg_hba.conf", atomically: true, encoding: .utf8)
        try chownToPostgres(cluster.dataDirectory + "/pg_hba.conf")
        _ = try cluster.sql("SELECT pg_reload_conf()")
        (status, items) = try Self.check(cluster, user: "norepl")
        #expect(status == 1)
        #expect(Self.item(items, "replication connection").status == "failed", "\(items)")
        #expect(Self.item(items, "replication connection").fix.contains("pg_hba.conf"))
        try hba.write(toFile: cluster.dataDirectory + "/pg_hba.conf", atomically: true, encoding: .utf8)
        try chownToPostgres(cluster.dataDirectory + "/pg_hba.conf")
        _ = try cluster.sql("SELECT pg_reload_conf()")

        // summarize_wal off: a warning (file-comparison differentials still work), not a failure.
        _ = try cluster.sql("ALTER SYSTEM SET summarize_wal = off")
        _ = try cluster.sql("SELECT pg_reload_conf()")
        (status, items) = try Self.check(cluster)
        #expect(status == 0)
        #expect(Self.item(items, "summarize_wal") == ("warning", "ALTER SYSTEM SET summarize_wal = on; SELECT pg_reload_conf();"))

        // A repository whose slot is gone, and whose WAL directory cannot be written.
        let repo = cluster.root + "/repo"
        _ = try PGKeepBinary.run(["repo", "init", "--repo", repo, "-d", "host=\(cluster.socketDirectory) port=\(cluster.port) user=postgres", "--slot", "checked"])
        (status, items) = try Self.check(cluster, extra: ["--repo", repo])
        #expect(status == 0, "\(items)")
        #expect(Self.item(items, "slot checked").status == "ok")
        _ = try cluster.sql("SELECT pg_drop_replication_slot('checked')")
        // Root writes through any mode bits, and a container may not mount: the archive "directory"
        // becomes a regular file, which no file can be written into.
        try FileManager.default.moveItem(atPath: repo + "/wal", toPath: repo + "/wal.away")
        try "not a directory\n".write(toFile: repo + "/wal", atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: repo + "/wal"); try? FileManager.default.moveItem(atPath: repo + "/wal.away", toPath: repo + "/wal") }
        (status, items) = try Self.check(cluster, extra: ["--repo", repo])
        #expect(status == 1)
        #expect(Self.item(items, "slot checked").status == "failed")
        #expect(Self.item(items, "archive directory").status == "failed", "\(items)")

        // Settings that need a restart: wal_level, WAL senders, replication slots.
        _ = try cluster.sql("ALTER SYSTEM SET wal_level = minimal")
        _ = try cluster.sql("ALTER SYSTEM SET max_wal_senders = 0")
        _ = try cluster.sql("ALTER SYSTEM SET max_replication_slots = 0")
        _ = try cluster.sql("ALTER SYSTEM SET summarize_wal = off")
        try cluster.stop()
        try cluster.start()
        (status, items) = try Self.check(cluster)
        #expect(status == 1)
        #expect(Self.item(items, "wal_level") == ("failed", "ALTER SYSTEM SET wal_level = replica; then restart the server"))
        #expect(Self.item(items, "WAL senders").status == "failed")
        #expect(Self.item(items, "WAL senders").fix.contains("max_wal_senders"))
        #expect(Self.item(items, "replication slots").status == "failed")

        // Unreachable.
        try cluster.stop()
        (status, items) = try Self.check(cluster)
        #expect(status == 1)
        #expect(Self.item(items, "connection").status == "failed")
    }

    /// Debian's libpq5 loads GnuTLS (through libldap), which initialises itself at load time
    /// unless the program says not to (Sources/CPGKeepGnuTLS): its constructor asks
    /// `_gnutls_global_init_skip`, and the dynamic linker must bind that question to pgkeep.
    static func gnuTLSAsksPGKeep(_ binary: String) throws -> (loaded: Bool, boundToPGKeep: Bool, lines: [Substring]) {
        let bindings = try Shell.run([binary, "--version"], environment: ["LD_DEBUG": "bindings"])
        let lines = bindings.stderr.split(separator: "\n").filter { $0.contains("libgnutls") }
        let bound = lines.contains { $0.contains("`_gnutls_global_init_skip'") && $0.contains("to \(binary) ") }
        return (!lines.isEmpty, bound, Array(lines.prefix(5)))
    }

    @Test("GnuTLS, which libpq5 loads through libldap, skips its load-time initialisation in pgkeep; connections still work (PG 17)",
          .enabled(if: FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/libgnutls.so.30"), "needs libgnutls30"))
    func gnuTLSNotInitialised() throws {
        let asked = try Self.gnuTLSAsksPGKeep(PGKeepBinary.path)
        try #require(asked.loaded, "pgkeep does not load GnuTLS here (libpq without LDAP?): nothing to check")
        #expect(asked.boundToPGKeep, "\(asked.lines)")
        let cluster = try TestCluster(major: 17)
        defer { cluster.destroy() }
        let backup = try PGKeepBinary.run(["backup"] + cluster.connectionArguments + ["-D", cluster.root + "/backup", "-c", "fast", "-F", "tar"])
        #expect(backup.succeeded, "\(backup.output)")
    }

    @Test("the Debian package: installs with apt-get, man pages render, lintian has no errors, the unit verifies and its ExecStart archives WAL",
          .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/lintian"), "needs root and lintian"))
    func debianPackage() throws {
        let cluster = try TestCluster(major: 17)
        defer { cluster.destroy() }
        let repository = (Fixtures.directory as NSString).deletingLastPathComponent
        let output = cluster.root + "/package"
        try Shell.check([repository + "/tools/package", output], timeout: 1800)
        let debs = try FileManager.default.contentsOfDirectory(atPath: output).filter { $0.hasSuffix("_amd64.deb") }
        #expect(debs.count == 1)
        let deb = output + "/" + debs[0]
        let lintian = try Shell.run(["lintian", "--no-tag-display-limit", deb])
        #expect(!lintian.output.split(separator: "\n").contains { $0.hasPrefix("E:") }, "\(lintian.output)")
        let install = try Shell.run(["apt-get", "install", "-y", "--no-install-recommends", deb], environment: ["DEBIAN_FRONTEND": "noninteractive"])
        #expect(install.succeeded, "\(install.output)")
        defer { _ = try? Shell.run(["apt-get", "remove", "-y", "pgkeep"], environment: ["DEBIAN_FRONTEND": "noninteractive"]) }

        let version = try Shell.run(["/usr/bin/pgkeep", "--version"])
        #expect(version.stdout.hasPrefix("pgkeep 0.") && version.stdout.contains("git "), "\(version.output)")
        // The installed binary needs nothing from the Swift toolchain.
        let libraries = try Shell.run(["ldd", "/usr/bin/pgkeep"])
        #expect(!libraries.stdout.contains("/opt/swift") && !libraries.stdout.contains("libswift"), "\(libraries.stdout)")
        // tools/ship-build links libstdc++ and libgcc's unwinder in and exports no symbols; they are in pgkeep.debug, beside the package.
        #expect(!libraries.stdout.contains("libstdc++") && !libraries.stdout.contains("libgcc_s"), "\(libraries.stdout)")
        let exported = try Shell.run(["nm", "-D", "--defined-only", "/usr/bin/pgkeep"])
        #expect(exported.stdout.split(separator: "\n").count < 20, "\(exported.stdout.prefix(2000))")
        // Except memcpy and memmove (Sources/CPGKeepMemcpy), to which libpq's copies are bound.
        let exportedNames = Set(exported.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) })
        #expect(exportedNames.isSuperset(of: ["memcpy", "memmove"]), "\(exported.stdout.prefix(2000))")
        let bindings = try Shell.run(["/usr/bin/pgkeep", "--version"], environment: ["LD_DEBUG": "bindings"])
        #expect(bindings.stderr.split(separator: "\n").contains { $0.contains("libpq.so") && $0.contains("to /usr/bin/pgkeep") && $0.contains("`memcpy'") },
                "\(bindings.stderr.split(separator: "\n").filter { $0.contains("memcpy") }.prefix(20))")
        // And _gnutls_global_init_skip (Sources/CPGKeepGnuTLS), which GnuTLS's constructor asks.
        #expect(exportedNames.contains("_gnutls_global_init_skip"), "\(exported.stdout.prefix(2000))")
        let asked = try Self.gnuTLSAsksPGKeep("/usr/bin/pgkeep")
        #expect(!asked.loaded || asked.boundToPGKeep, "\(asked.lines)")
        let debugLink = try Shell.run(["readelf", "-x", ".gnu_debuglink", "/usr/bin/pgkeep"]) // a hex dump: its CRC is not UTF-8
        #expect(debugLink.stdout.contains("pgkeep.debug"), "\(debugLink.output)")
        let symbols = try Shell.run(["nm", output + "/pgkeep.debug"])
        #expect(symbols.stdout.contains("pgkeep_main"), "\(symbols.output.prefix(500))")
        // libm is not loaded at start (Sources/CPGKeepLazyMath), and a backup does not load it either.
        #expect(!libraries.stdout.contains("libm.so"), "\(libraries.stdout)")
        let backup = try Shell.run(["/usr/bin/pgkeep", "backup", "-d", "host=\(cluster.socketDirectory) port=\(cluster.port) user=postgres",
                                    "-D", cluster.root + "/installed-backup", "-c", "fast"], environment: ["LD_DEBUG": "files"])
        #expect(backup.succeeded, "\(backup.output)")
        #expect(!backup.stderr.contains("libm.so"), "\(backup.stderr.split(separator: "\n").filter { $0.contains("libm") }.prefix(5))")
        #expect(FileManager.default.fileExists(atPath: cluster.root + "/installed-backup/backup_manifest"))

        let pages = try FileManager.default.contentsOfDirectory(atPath: "/usr/share/man/man1").filter { $0.hasPrefix("pgkeep") }
        #expect(pages.count >= 15, "\(pages)")
        for page in pages {
            let rendered = try Shell.run(["man", "-l", "/usr/share/man/man1/" + page], environment: ["MANPAGER": "cat", "PAGER": "cat"])
            #expect(rendered.succeeded && rendered.stdout.contains("SYNOPSIS"), "\(page): \(rendered.output.prefix(500))")
        }
        #expect(FileManager.default.fileExists(atPath: "/usr/share/bash-completion/completions/pgkeep"))
        #expect(FileManager.default.fileExists(atPath: "/usr/lib/bacula/pgkeep-fd.so"))

        let unit = "/lib/systemd/system/pgkeep-receive-wal@.service"
        let verify = try Shell.run(["systemd-analyze", "verify", "--man=no", unit])
        #expect(verify.succeeded && !verify.output.contains("rror"), "\(verify.output)")

        // The unit's ExecStart, with a config's values, run by hand as postgres: it archives WAL.
        let archive = cluster.root + "/service-archive"
        try FileManager.default.createDirectory(atPath: archive, withIntermediateDirectories: true)
        try chownToPostgres(archive)
        let values = ["PGKEEP_CONNINFO": "host=\(cluster.socketDirectory) port=\(cluster.port) user=postgres", "PGKEEP_DIRECTORY": archive,
                      "PGKEEP_SLOT": "service_test", "PGKEEP_COMPRESS": "zstd", "PGKEEP_METRICS_ADDR": ""]
        try Shell.check(["/usr/bin/pgkeep", "receive-wal", "--create-slot", "--slot", "service_test", "-d", values["PGKEEP_CONNINFO"]!])
        let unitText = try String(contentsOfFile: unit, encoding: .utf8)
        let execStart = unitText.split(separator: "\n").first { $0.hasPrefix("ExecStart=") }!.dropFirst("ExecStart=".count)
        let arguments = execStart.split(separator: " ").map { word -> String in
            var text = String(word)
            for (key, value) in values { text = text.replacingOccurrences(of: "${\(key)}", with: value) }
            return text
        }
        let archiver = try Shell.spawn(arguments, asPostgres: true)
        defer { archiver.signal(SIGTERM); _ = try? archiver.wait(timeout: 60) }
        sleep(2)
        _ = try cluster.sql("CREATE TABLE t AS SELECT g FROM generate_series(1, 100000) g")
        let switched = try cluster.sql("SELECT pg_walfile_name(pg_switch_wal())")
        var archived = false
        for _ in 0..<150 where !archived {
            archived = FileManager.default.fileExists(atPath: archive + "/" + switched + ".zst")
            if !archived { usleep(200_000) }
        }
        #expect(archived, "\(switched).zst in \((try? FileManager.default.contentsOfDirectory(atPath: archive)) ?? []): \(archiver.stderrSoFar)")
    }
}
