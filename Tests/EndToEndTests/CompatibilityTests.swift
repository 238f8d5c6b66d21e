import Foundation
import Testing
import TestSupport

/// pgkeep where scripts say pg_basebackup, pg_receivewal or pg_verifybackup: their spellings,
/// their options, and the behaviours they get right.
@Suite("drop-in compatibility with PostgreSQL's tools", .serialized)
struct CompatibilityTests {
    func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
    }

    @Test("an in-place tablespace lands inside the backup, never in the working directory", arguments: [15, 16, 17, 18])
    func inPlaceTablespace(major: Int) throws {
        var settings = TestCluster.Settings()
        settings.extraConfig = ["allow_in_place_tablespaces = on"]
        let cluster = try TestCluster(major: major, settings: settings)
        defer { cluster.destroy() }
        try cluster.sql("CREATE TABLESPACE inplace LOCATION ''")
        try cluster.sql("CREATE TABLE t_inplace TABLESPACE inplace AS SELECT g, md5(g::text) AS m FROM generate_series(1, 5000) g")
        let oid = try cluster.sql("SELECT oid FROM pg_tablespace WHERE spcname = 'inplace'")
        let checksum = try cluster.sql("SELECT md5(string_agg(m, ',' ORDER BY g)) FROM t_inplace")
        // Run from a scratch working directory: the old bug wrote ./pg_tblspc/<oid> there.
        let workingDirectory = try cluster.makeDirectory("cwd")
        let backup = cluster.root + "/backup"
        let result = try Shell.run(["/bin/sh", "-c", "cd '\(workingDirectory)' && exec '\(PGKeepBinary.path)' backup -D '\(backup)' -cfast "
                                    + cluster.connectionArguments.joined(separator: " ")])
        try #require(result.succeeded, "\(result.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: workingDirectory).isEmpty, "nothing written outside the target")
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: backup + "/pg_tblspc/" + oid, isDirectory: &isDirectory) && isDirectory.boolValue)
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: backup + "/pg_tblspc/" + oid)).isEmpty)
        let verified = try verifyBackup(cluster.installation, backup)
        #expect(verified.succeeded, "pg_verifybackup: \(verified.output)")
        #expect(try PGKeepBinary.run(["verify", backup]).succeeded)

        // A restore keeps it inside too, and the server finds the table.
        let restored = cluster.root + "/restored"
        try PGKeepBinary.run(["restore", backup, "--target-dir", restored]).requireSuccess()
        let server = try RestoredServer(installation: cluster.installation, dataDirectory: restored, root: cluster.root)
        defer { server.stop() }
        #expect(try server.sql("SELECT md5(string_agg(m, ',' ORDER BY g)) FROM t_inplace") == checksum)
    }

    @Test("scripts written for pg_basebackup run unchanged; group modes, -R dbname, and the options scripts use (PG 17)")
    func pgBaseBackupScripts() throws {
        var settings = TestCluster.Settings()
        settings.initdbArguments = ["-g"]
        settings.extraConfig = ["summarize_wal = on"]
        let cluster = try TestCluster(major: 17, settings: settings)
        defer { cluster.destroy() }
        try cluster.sql("CREATE TABLE data AS SELECT g, md5(g::text) AS m FROM generate_series(1, 20000) g")
        let connection = cluster.connectionArguments.joined(separator: " ")
        let pgkeep = PGKeepBinary.path
        func script(_ command: String) throws -> CommandResult { try Shell.run(["/bin/bash", "-c", command]) }

        // pg_basebackup -D - -Ft -Xnone | tar -t: one archive on standard output, manifest inside.
        let listing = try script("set -o pipefail; '\(pgkeep)' backup \(connection) -D - -Ft -Xnone | tar -t")
        #expect(listing.succeeded, "\(listing.output)")
        #expect(listing.stdout.split(separator: "\n").contains("backup_manifest"), "\(listing.stdout.prefix(300))")
        #expect(listing.stdout.split(separator: "\n").contains("PG_VERSION"))
        let refused = try PGKeepBinary.run(["backup"] + cluster.connectionArguments + ["-D", "-", "-Ft", "-Xs"])
        #expect(refused.status == 2 && refused.stderr.contains("cannot stream WAL to standard output"), "\(refused.stderr)")

        // pg_basebackup -Ft -Xs -z -cfast -P -D dir
        let tarBackup = cluster.root + "/tar"
        let tar = try script("'\(pgkeep)' backup \(connection) -Ft -Xs -z -cfast -P -D '\(tarBackup)'")
        #expect(tar.succeeded, "\(tar.output)")
        #expect(isFile(tarBackup + "/base.tar.gz") && isFile(tarBackup + "/pg_wal.tar.gz"))
        #expect(try PGKeepBinary.run(["verify", tarBackup]).succeeded)
        #expect(try mode(tarBackup) == 0o750 && mode(tarBackup + "/base.tar.gz") == 0o640 && mode(tarBackup + "/backup_manifest") == 0o640)

        // A group-readable cluster (initdb -g) gives a group-readable plain backup, WAL included.
        let plain = cluster.root + "/plain"
        try PGKeepBinary.run(["backup"] + cluster.connectionArguments + ["-D", plain, "-cfast"]).requireSuccess()
        let segment = try FileManager.default.contentsOfDirectory(atPath: plain + "/pg_wal").first { $0.count == 24 }!
        #expect(try mode(plain) == 0o750 && mode(plain + "/pg_wal") == 0o750)
        #expect(try mode(plain + "/pg_wal/" + segment) == 0o640 && mode(plain + "/backup_manifest") == 0o640)
        #expect(try mode(plain + "/PG_VERSION") == 0o640 && mode(plain + "/base") == 0o750)

        // -R with -d 'dbname=…' keeps the database in primary_conninfo (17's slot synchronisation needs it).
        let standby = cluster.root + "/standby"
        try PGKeepBinary.run(["backup", "-d", "dbname=postgres host=\(cluster.socketDirectory) port=\(cluster.port) user=postgres",
                              "-D", standby, "-R", "-cfast", "-Xnone"]).requireSuccess()
        let autoConf = try String(contentsOfFile: standby + "/postgresql.auto.conf", encoding: .utf8)
        #expect(autoConf.contains("dbname=postgres"), "\(autoConf)")

        // pg_basebackup -Fp -Xfetch -T old=new (a user tablespace from here on).
        let tablespace = try cluster.makeDirectory("ts")
        try cluster.sql("CREATE TABLESPACE ts LOCATION '\(tablespace)'")
        try cluster.sql("CREATE TABLE in_ts TABLESPACE ts AS SELECT 1 AS one")
        let fetched = cluster.root + "/fetched"
        let mapped = try script("'\(pgkeep)' backup \(connection) -Fp -Xfetch -T \(tablespace)=\(cluster.root)/ts-copy -D '\(fetched)'")
        #expect(mapped.succeeded, "\(mapped.output)")
        #expect(try verifyBackup(cluster.installation, fetched).succeeded)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: fetched + "/pg_tblspc/" + cluster.sql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts'"))
                == cluster.root + "/ts-copy")

        // --waldir: pg_wal is a link to it, the WAL is there, the backup verifies.
        let withWaldir = cluster.root + "/waldir-backup", waldir = cluster.root + "/waldir"
        try PGKeepBinary.run(["backup"] + cluster.connectionArguments + ["-D", withWaldir, "--waldir", waldir, "-T", "\(tablespace)=\(cluster.root)/ts-w", "-cfast"])
            .requireSuccess()
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: withWaldir + "/pg_wal") == waldir)
        #expect(try FileManager.default.contentsOfDirectory(atPath: waldir).contains { $0.count == 24 })
        #expect(try verifyBackup(cluster.installation, withWaldir).succeeded)

        // --no-manifest: no backup_manifest, and the in-progress marker is gone at the end.
        let noManifest = cluster.root + "/no-manifest"
        try PGKeepBinary.run(["backup"] + cluster.connectionArguments + ["-D", noManifest, "--no-manifest", "--no-slot",
                                                                        "-T", "\(tablespace)=\(cluster.root)/ts-n", "-cfast"]).requireSuccess()
        #expect(!isFile(noManifest + "/backup_manifest") && !isFile(noManifest + "/pgkeep.incomplete") && isFile(noManifest + "/PG_VERSION"))

        // --manifest-force-encode, --no-verify-checksums.
        let encoded = cluster.root + "/encoded"
        try PGKeepBinary.run(["backup"] + cluster.connectionArguments + ["-D", encoded, "--manifest-force-encode", "--no-verify-checksums",
                                                                        "-Ft", "-cfast"]).requireSuccess()
        let manifest = try String(contentsOfFile: encoded + "/backup_manifest", encoding: .utf8)
        #expect(manifest.contains("\"Encoded-Path\"") && !manifest.contains("\"Path\""))

        // Server-side targets: blackhole, and a directory on the server.
        try PGKeepBinary.run(["backup"] + cluster.connectionArguments + ["--target", "blackhole", "-Xnone", "-cfast"]).requireSuccess()
        let onServer = cluster.root + "/on-server"
        try PGKeepBinary.run(["backup"] + cluster.connectionArguments + ["--target=server:\(onServer)", "-Xfetch", "-cfast"]).requireSuccess()
        #expect(isFile(onServer + "/base.tar") && isFile(onServer + "/backup_manifest"))

        // --incremental: UPLOAD_MANIFEST then INCREMENTAL; pg_combinebackup makes a backup that verifies.
        let full = cluster.root + "/full", incremental = cluster.root + "/incremental", combined = cluster.root + "/combined"
        try PGKeepBinary.run(["backup"] + cluster.connectionArguments + ["-D", full, "-T", "\(tablespace)=\(cluster.root)/ts-f", "-cfast"]).requireSuccess()
        try cluster.sql("UPDATE data SET m = md5(m) WHERE g % 10 = 0")
        try PGKeepBinary.run(["backup"] + cluster.connectionArguments + ["-D", incremental, "-i", full + "/backup_manifest",
                                                                        "-T", "\(tablespace)=\(cluster.root)/ts-i", "-cfast"]).requireSuccess()
        let incrementalFiles = try Shell.run(["/usr/bin/find", incremental, "-name", "INCREMENTAL.*"]).stdout
        #expect(!incrementalFiles.isEmpty, "the server sent incremental files")
        let combine = try Shell.run([cluster.installation.tool("pg_combinebackup"), full, incremental, "-o", combined,
                                     "-T", "\(cluster.root)/ts-i=\(cluster.root)/ts-c"])
        #expect(combine.succeeded, "\(combine.output)")
        #expect(try verifyBackup(cluster.installation, combined).succeeded)

        // verify: the manifest's checksum covers exactly its bytes, and its system identifier is pg_control's.
        let edited = cluster.root + "/edited"
        try FileManager.default.copyItem(atPath: plain, toPath: edited)
        let original = try Data(contentsOf: URL(fileURLWithPath: edited + "/backup_manifest"))
        try (original + Data("\n".utf8)).write(to: URL(fileURLWithPath: edited + "/backup_manifest"))
        let newline = try PGKeepBinary.run(["verify", edited])
        #expect(newline.status == 2, "a newline appended to the manifest: \(newline.output)")
        #expect(!(try verifyBackup(cluster.installation, edited)).succeeded, "pg_verifybackup agrees")
        try rewriteSystemIdentifier(in: edited + "/backup_manifest", original: original)
        let identifier = try PGKeepBinary.run(["verify", edited])
        #expect(identifier.status == 1 && identifier.stderr.contains("manifest system identifier is"), "\(identifier.output)")
        #expect(!(try verifyBackup(cluster.installation, edited)).succeeded, "pg_verifybackup agrees")
    }

    /// Changes the manifest's System-Identifier and writes a correct Manifest-Checksum for it.
    func rewriteSystemIdentifier(in path: String, original: Data) throws {
        var text = String(decoding: original, as: UTF8.self)
        let range = text.range(of: #""System-Identifier": [0-9]+"#, options: .regularExpression)!
        let number = UInt64(text[range].split(separator: " ").last!)!
        text.replaceSubrange(range, with: "\"System-Identifier\": \(number &+ 1)")
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        lines.removeLast(2) // "" after the final newline, and the checksum line
        let body = lines.joined(separator: "\n") + "\n"
        let scratch = path + ".body"
        try body.write(toFile: scratch, atomically: true, encoding: .utf8)
        let sum = try Shell.check(["/usr/bin/sha256sum", scratch]).stdout.prefix(64)
        try? FileManager.default.removeItem(atPath: scratch)
        try (body + "\"Manifest-Checksum\": \"\(sum)\"}\n").write(toFile: path, atomically: true, encoding: .utf8)
    }
}
