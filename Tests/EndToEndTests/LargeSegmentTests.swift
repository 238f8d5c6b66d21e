import Foundation
import Testing
import TestSupport

/// A cluster initialised with 1 GiB WAL segments (the largest PostgreSQL allows): verify and
/// wal-fetch must read them in fixed buffers, their memory no larger than with 16 MiB segments.
@Suite("1 GiB WAL segments: bounded memory", .serialized)
struct LargeSegmentTests {
    @Test("verify and wal-fetch (plain and zstd) keep a flat peak RSS on 1 GiB segments")
    func flatMemory() throws {
        var settings = TestCluster.Settings()
        settings.walSegmentSizeMB = 1024
        let cluster = try TestCluster(major: 17, settings: settings)
        defer { cluster.destroy() }
        try cluster.sql("CREATE TABLE t AS SELECT g, md5(g::text) AS m FROM generate_series(1, 200000) g")
        let backup = cluster.root + "/backup"
        try PGKeepBinary.run(["backup"] + cluster.connectionArguments + ["-D", backup, "-c", "fast", "-N"]).requireSuccess()
        let segments = try FileManager.default.contentsOfDirectory(atPath: backup + "/pg_wal").filter { $0.count == 24 }.sorted()
        try #require(!segments.isEmpty)

        let (verified, verifyPeak) = try PGKeepBinary.runMeasuringPeakRSS(["verify", backup])
        #expect(verified.succeeded, "\(verified.output)")
        #expect(verifyPeak < 96 * 1024, "verify peak RSS \(verifyPeak) kB on a 1 GiB segment")

        // The backup's pg_wal serves as an archive; a zstd copy of the segment too.
        let archive = try cluster.makeDirectory("archive")
        let segment = segments[0]
        try Shell.check(["/usr/bin/zstd", "-q", "-1", backup + "/pg_wal/" + segment, "-o", archive + "/" + segment + ".zst"])
        for (source, name) in [(backup + "/pg_wal", "plain"), (archive, "zstd")] {
            let destination = cluster.root + "/fetched-\(name)"
            let (fetched, fetchPeak) = try PGKeepBinary.runMeasuringPeakRSS(["wal-fetch", segment, destination, "--wal-archive", source])
            #expect(fetched.succeeded, "\(name): \(fetched.output)")
            #expect(fetchPeak < 96 * 1024, "wal-fetch (\(name)) peak RSS \(fetchPeak) kB")
            let size = try FileManager.default.attributesOfItem(atPath: destination)[.size] as? Int
            #expect(size == 1 << 30)
            let same = try Shell.run(["/usr/bin/cmp", "-s", destination, backup + "/pg_wal/" + segment])
            #expect(same.succeeded, "\(name): the fetched segment is the backup's")
            try? FileManager.default.removeItem(atPath: destination)
        }
    }
}
