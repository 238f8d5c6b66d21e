import Foundation
import Testing
import TestSupport

@Suite("pgkeep backup, tar format, on real servers", .serialized)
struct TarBackupTests {
    /// Each version gets a different compression, so every codec meets a real server.
    static let cases: [(Int, String?)] = [
        (14, "gzip:5"), (15, "zstd:level=3,workers=2"), (16, "lz4"), (17, "server-zstd"), (18, nil),
    ]

    @Test("tar backup (compressed) unpacks to a backup pg_verifybackup accepts", arguments: cases)
    func tarBackup(major: Int, compression: String?) throws {
        let source = try SourceCluster(major: major, scale: 1)
        defer { source.cluster.destroy() }
        let cluster = source.cluster
        let backup = cluster.root + "/backup"
        let load = try source.startLoad(seconds: 4)
        let result = try PGKeepBinary.run(["backup"] + cluster.connectionArguments + ["-D", backup, "-F", "tar", "-c", "fast"]
                                          + (compression.map { ["-Z", $0] } ?? []))
        try load.wait()
        try #require(result.succeeded, "pgkeep: \(result.output)")

        let files = Set(try FileManager.default.contentsOfDirectory(atPath: backup))
        let suffix = compression.map { $0.contains("zstd") ? ".zst" : $0.hasPrefix("lz4") ? ".lz4" : ".gz" } ?? ""
        let oid = try cluster.sql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'")
        #expect(files == ["base.tar" + suffix, "\(oid).tar" + suffix, "pg_wal.tar" + suffix, "backup_manifest"])

        let unpacked = cluster.root + "/unpacked"
        try unpackTarBackup(backup, into: unpacked)
        let verified = try verifyBackup(cluster.installation, unpacked)
        #expect(verified.succeeded, "pg_verifybackup: \(verified.output)")

        if major >= 18 {
            // 18's pg_verifybackup reads tar backups itself (WAL parsing is not supported there).
            let direct = try verifyBackup(cluster.installation, backup, extra: ["--no-parse-wal"])
            #expect(direct.succeeded, "pg_verifybackup on the tar backup: \(direct.output)")
        }
    }

    @Test("-X fetch puts the WAL inside base.tar")
    func fetchWAL() throws {
        let source = try SourceCluster(major: 16, scale: 1)
        defer { source.cluster.destroy() }
        let cluster = source.cluster
        let backup = cluster.root + "/backup"
        let result = try PGKeepBinary.run(["backup"] + cluster.connectionArguments + ["-D", backup, "-F", "tar", "-X", "fetch", "-c", "fast"])
        try #require(result.succeeded, "pgkeep: \(result.output)")
        #expect(!isFile(backup + "/pg_wal.tar"))
        let listing = try Shell.check(["/bin/tar", "-tf", backup + "/base.tar"]).stdout
        #expect(listing.split(separator: "\n").contains { $0.hasPrefix("pg_wal/0000000") })
        let unpacked = cluster.root + "/unpacked"
        try unpackTarBackup(backup, into: unpacked)
        let verified = try verifyBackup(cluster.installation, unpacked)
        #expect(verified.succeeded, "pg_verifybackup: \(verified.output)")
    }
}
