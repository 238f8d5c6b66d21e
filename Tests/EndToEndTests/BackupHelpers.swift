import Foundation
import TestSupport

/// A source cluster prepared the same way for every end-to-end backup test: data checksums, a
/// user tablespace holding pgbench's tables and a marker table whose checksum is known.
struct SourceCluster {
    let cluster: TestCluster
    let tablespace: String
    let markerChecksum: String

    init(major: Int, settings: TestCluster.Settings = .init(), scale: Int = 2) throws {
        cluster = try TestCluster(major: major, settings: settings)
        do {
            tablespace = try cluster.makeDirectory("ts1")
            try cluster.sql("CREATE TABLESPACE ts1 LOCATION '\(tablespace)'")
            try Shell.check([cluster.installation.tool("pgbench"), "-i", "-q", "-s", String(scale), "--tablespace=ts1",
                             "--index-tablespace=ts1"] + cluster.connectionArguments + ["postgres"])
            try cluster.sql("""
                CREATE TABLE marker (id int PRIMARY KEY, payload text) TABLESPACE ts1;
                INSERT INTO marker SELECT g, md5(g::text) || repeat('x', g % 50) FROM generate_series(1, 20000) g;
                CREATE TABLE random_data (id int, blob bytea);
                INSERT INTO random_data SELECT g, decode(md5(random()::text) || md5(random()::text), 'hex') FROM generate_series(1, 5000) g;
                """)
            markerChecksum = try cluster.sql(Self.markerQuery)
        } catch {
            cluster.destroy()
            throw error
        }
    }

    static let markerQuery = "SELECT md5(string_agg(id::text || ':' || payload, ',' ORDER BY id)) FROM marker"

    /// pgbench writing in the background; `wait()` joins it.
    func startLoad(seconds: Int) throws -> Spawned {
        try Shell.spawn([cluster.installation.tool("pgbench"), "-c", "2", "-T", String(seconds), "-n"]
                        + cluster.connectionArguments + ["postgres"])
    }
}

/// Starts a server on a backup (plain data directory) on its own port and socket, as postgres.
final class RestoredServer {
    let installation: PostgresInstallation
    let dataDirectory: String
    let socket: String
    let port: Int

    /// `tablespaces`: the directories the backup's pg_tblspc links point to (given to postgres too).
    init(installation: PostgresInstallation, dataDirectory: String, root: String, tablespaces: [String] = []) throws {
        self.installation = installation
        self.dataDirectory = dataDirectory
        socket = root + "/restored-sock"
        port = try freePort()
        try FileManager.default.createDirectory(atPath: socket, withIntermediateDirectories: true)
        try chownToPostgres(socket)
        for directory in [dataDirectory] + tablespaces { try chownToPostgres(directory) }
        chmod(dataDirectory, 0o700)
        let result = try Shell.run([installation.tool("pg_ctl"), "-D", dataDirectory, "-l", root + "/restored.log", "-w", "-t", "120",
                                    "-o", "-p \(port) -k \(socket) -c listen_addresses=''", "start"], asPostgres: true)
        guard result.succeeded else {
            let log = (try? String(contentsOfFile: root + "/restored.log", encoding: .utf8)) ?? ""
            throw TestFailure("the backup did not start as a server:\n\(result.output)\n\(log.suffix(3000))")
        }
    }

    @discardableResult
    func sql(_ statement: String, database: String = "postgres") throws -> String {
        try Shell.check([installation.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-h", socket, "-p", String(port),
                         "-U", "postgres", "-d", database, "-c", statement]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func amcheck() throws -> CommandResult {
        try Shell.run([installation.tool("pg_amcheck"), "-h", socket, "-p", String(port), "-U", "postgres", "--install-missing",
                       "--all", "--heapallindexed"])
    }

    /// Tuples a visibility map calls all-visible (or all-frozen) that are not: "0" when the maps
    /// are sound (pg_visibility, in the postgres database; needs a promoted server).
    func visibilityMapErrors() throws -> String {
        _ = try sql("CREATE EXTENSION IF NOT EXISTS pg_visibility")
        return try sql("SELECT (SELECT count(*) FROM pg_class c, pg_check_visible(c.oid) WHERE c.relkind IN ('r', 'm'))"
                       + " + (SELECT count(*) FROM pg_class c, pg_check_frozen(c.oid) WHERE c.relkind IN ('r', 'm'))")
    }

    func stop() { _ = try? Shell.run([installation.tool("pg_ctl"), "-D", dataDirectory, "-m", "immediate", "-w", "stop"], asPostgres: true) }
}

/// pg_verifybackup of the server's own version: the reference checker.
func verifyBackup(_ installation: PostgresInstallation, _ directory: String, extra: [String] = []) throws -> CommandResult {
    try Shell.run([installation.tool("pg_verifybackup")] + extra + [directory], asPostgres: false)
}

/// Unpacks a tar-format backup into a plain directory with system tar, tablespace archives into
/// pg_tblspc/<oid>, so pg_verifybackup (which reads plain directories before 18) can check it.
func unpackTarBackup(_ backup: String, into directory: String) throws {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let files = try FileManager.default.contentsOfDirectory(atPath: backup)
    for file in files where file.contains(".tar") {
        let stem = String(file[..<file.range(of: ".tar")!.lowerBound])
        let destination: String
        switch stem {
        case "base": destination = directory
        case "pg_wal": destination = directory + "/pg_wal"
        default: destination = directory + "/pg_tblspc/" + stem
        }
        try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
        var arguments = ["/bin/tar", "-xf", backup + "/" + file, "-C", destination]
        if file.hasSuffix(".zst") { arguments += ["-I", "zstd"] }
        if file.hasSuffix(".lz4") { arguments += ["-I", "lz4"] }
        if file.hasSuffix(".gz") { arguments += ["-z"] }
        try Shell.check(arguments)
    }
    try FileManager.default.copyItem(atPath: backup + "/backup_manifest", toPath: directory + "/backup_manifest")
    // tablespace_map stays: the manifest lists it. (It points at the source's tablespace, so this
    // directory is for verification, not for starting a server next to the source.)
}

func isFile(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }
