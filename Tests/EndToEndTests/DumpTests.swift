import Foundation
import Testing
import TestSupport

/// `pgkeep dump` and `restore-dump` on real servers: awkward names, roles, settings, grants, a
/// large object, a tablespace, and one database that fails to dump.
@Suite("dump mode", .serialized)
struct DumpTests {
    static let names = ["plain_db", "my db", "quo\"te", "ünïcødé", ".hidden", "in_ts", "zz_failing"]

    static func ident(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    func run(_ arguments: [String], expect status: Int32 = 0) throws -> CommandResult {
        let result = try PGKeepBinary.run(arguments, timeout: 300)
        guard result.status == status else { throw TestFailure("pgkeep \(arguments.joined(separator: " ")) exited \(result.status), expected \(status):\n\(result.output)") }
        return result
    }

    /// What a database holds, as text to compare: its schema (pg_dump --schema-only, minus the
    /// per-dump \restrict key) and its tables' contents.
    func fingerprint(_ cluster: TestCluster, _ database: String) throws -> String {
        let schema = try Shell.check([cluster.installation.tool("pg_dump"), "--schema-only", "-h", cluster.socketDirectory, "-p", String(cluster.port),
                                      "-U", "postgres", "-d", database]).stdout
            .split(separator: "\n").filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }.joined(separator: "\n")
        let contents = try cluster.sql("SELECT coalesce(md5(string_agg(t::text, ',' ORDER BY id)), '') FROM t", database: database)
        let objects = try cluster.sql("SELECT count(*) FROM pg_largeobject_metadata", database: database)
        return schema + "\n" + contents + "\n" + objects
    }

    @Test("a server out of reach: the plugin's words, and libpq's reason")
    func unreachable() throws {
        let port = try freePort()
        let result = try PGKeepBinary.run(["dump", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "--output", "/tmp/pgkeep-never-\(port)"])
        #expect(result.status == 3, "\(result.output)")
        #expect(result.stderr.contains("Can't reach PostgreSQL server to get database config.") && result.stderr.contains("Connection refused"), "\(result.stderr)")
    }

    @Test("dump, restore each database under a new name, single tables, roles into a fresh cluster, refusals", arguments: [14, 15, 16, 17, 18])
    func dumpAndRestore(major: Int) throws {
        let cluster = try TestCluster(major: major)
        defer { cluster.destroy() }
        let tablespace = try cluster.makeDirectory("ts")
        try cluster.sql("CREATE TABLESPACE dump_ts LOCATION '\(tablespace)'")
        try cluster.sql("CREATE ROLE readers NOLOGIN")
        try cluster.sql("CREATE ROLE alice LOGIN PASSWORD 'a1' CONNECTION LIMIT 3")
        try cluster.sql("GRANT readers TO alice")
        for name in Self.names {
            try cluster.sql("CREATE DATABASE \(Self.ident(name))" + (name == "in_ts" ? " TABLESPACE dump_ts" : ""))
            try cluster.sql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 500) g;"
                            + "CREATE TABLE t2 AS SELECT g AS id FROM generate_series(1, 10) g", database: name)
        }
        try cluster.sql("ALTER DATABASE \(Self.ident("my db")) SET work_mem = '8MB'")
        try cluster.sql("ALTER ROLE alice IN DATABASE \(Self.ident("my db")) SET search_path = public, \"X y\"")
        try cluster.sql("REVOKE ALL ON DATABASE \(Self.ident("my db")) FROM PUBLIC; GRANT CONNECT ON DATABASE \(Self.ident("my db")) TO alice")
        try cluster.sql("SELECT lo_from_bytea(0, 'a large object')", database: "my db")
        try cluster.sql("COMMENT ON DATABASE plain_db IS 'it''s plain'")

        // One database cannot be dumped: its table stays locked while pg_dump waits 1 s at most.
        let locker = try Shell.spawn([cluster.installation.tool("psql"), "-X", "-h", cluster.socketDirectory, "-p", String(cluster.port), "-U", "postgres",
                                      "-d", "zz_failing", "-c", "BEGIN; LOCK TABLE t; SELECT pg_sleep(60)"])
        defer { locker.signal(SIGTERM); _ = try? locker.wait(timeout: 30) }
        try waitUntil("the lock to be held", timeout: 30) {
            (try? cluster.sql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 't' AND l.mode = 'AccessExclusiveLock'", database: "zz_failing")) == "1"
        }
        let connection = cluster.connectionArguments + ["--bin-dir", cluster.installation.bin]
        let dump = cluster.root + "/dump"
        let partial = try run(["dump"] + connection + ["--output", dump, "--dump-opt", "--lock-wait-timeout=1000", "--json", "-j", "2"], expect: 1)
        let summary = try JSONSerialization.jsonObject(with: Data(partial.stdout.utf8)) as! [String: Any]
        #expect(summary["status"] as? String == "partial")
        let databases = summary["databases"] as! [[String: Any]]
        #expect(Set(databases.map { $0["name"] as! String }) == Set(Self.names + ["postgres"]))
        for database in databases {
            let name = database["name"] as! String
            #expect((database["ok"] as? Bool) == (name != "zz_failing"), "\(name): \(database)")
        }
        #expect((databases.first { $0["name"] as? String == "zz_failing" }?["error"] as? String)?.contains("pg_dump failed") == true)
        for file in ["roles.sql", "tablespaces.sql", "postgresql.conf", "pg_hba.conf", "pg_ident.conf", "databases.json"] {
            #expect(isFile(dump + "/" + file), "\(file)")
        }
        #expect(isFile(dump + "/%2Ehidden/data.sqlc") && isFile(dump + "/my db/createdb.sql") && isFile(dump + "/quo\"te/schema.sql"))
        #expect(!isFile(dump + "/zz_failing/data.sqlc") && !isFile(dump + "/zz_failing/data.sqlc.tmp"), "no half file under its name")
        let roles = try String(contentsOfFile: dump + "/roles.sql", encoding: .utf8)
        #expect(roles.contains("CREATE ROLE alice") && (roles.contains("PASSWORD 'SCRAM-SHA-256$") || roles.contains("PASSWORD 'md5")), "passwords kept")

        // --abort-on-error stops at the first failure (databases go in name order with one job).
        let stopped = cluster.root + "/stopped"
        _ = try run(["dump"] + connection + ["--output", stopped, "--dump-opt", "--lock-wait-timeout=1000", "--abort-on-error"], expect: 1)
        #expect(!isFile(stopped + "/databases.json"), "an aborted dump is not a finished one")

        // --estimate: pg_database_size's own figures.
        let estimate = try JSONSerialization.jsonObject(with: Data(try run(["dump", "--estimate", "--json"] + cluster.connectionArguments).stdout.utf8)) as! [String: Any]
        let sizes = estimate["databases"] as! [[String: Any]]
        for entry in sizes where entry["name"] as? String == "plain_db" {
            #expect("\(entry["size"]!)" == (try cluster.sql("SELECT pg_database_size('plain_db')")))
        }
        locker.signal(SIGTERM)
        _ = try? locker.wait(timeout: 30)

        // Every dumped database restored under a new name holds what the original holds, with its settings and grants.
        for (index, name) in Self.names.dropLast().enumerated() {
            let copy = "copy_\(index)"
            _ = try run(["restore-dump", dump, "--database", name, "--new-name", copy] + connection)
            #expect(try fingerprint(cluster, copy) == fingerprint(cluster, name), "\(name) → \(copy)")
        }
        let settings = { (database: String) in
            try cluster.sql("SELECT string_agg(coalesce(r.rolname, '*') || ':' || array_to_string(s.setconfig, ';'), ' ' ORDER BY r.rolname) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE d.datname = '\(database)'")
        }
        #expect(try settings("copy_1") == settings("my db"))
        #expect(try cluster.sql("SELECT has_database_privilege('alice', 'copy_1', 'CONNECT')") == "t")
        #expect(try cluster.sql("SELECT has_database_privilege('readers', 'copy_1', 'CONNECT')") == "f", "PUBLIC's CONNECT was revoked")
        #expect(try cluster.sql("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = 'copy_0'") == "it's plain")
        #expect(try cluster.sql("SELECT spcname FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE datname = 'copy_5'") == "dump_ts")

        // A single table back into the existing database; --replace never refuses, changing nothing.
        try cluster.sql("DROP TABLE t2", database: "plain_db")
        _ = try run(["restore-dump", dump, "--database", "plain_db", "--table", "t2"] + connection)
        #expect(try cluster.sql("SELECT count(*) FROM t2", database: "plain_db") == "10")
        let refused = try run(["restore-dump", dump, "--database", "plain_db", "--replace", "never"] + connection, expect: 2)
        #expect(refused.stderr.contains("--replace never"), "\(refused.stderr)")
        let replaceBusy = try run(["restore-dump", dump, "--database", "postgres", "--replace", "always"] + connection, expect: 2)
        #expect(replaceBusy.stderr.contains("cannot be replaced"), "\(replaceBusy.stderr)")

        // Roles into a fresh cluster: memberships and passwords come along; existing ones are named.
        let fresh = try TestCluster(major: major)
        defer { fresh.destroy() }
        let restoredRoles = try run(["restore-dump", dump, "--roles", "--bin-dir", fresh.installation.bin] + fresh.connectionArguments)
        #expect(restoredRoles.stdout.contains("already there: postgres"), "\(restoredRoles.output)")
        #expect(try fresh.sql("SELECT pg_has_role('alice', 'readers', 'MEMBER') AND rolpassword IS NOT NULL AND rolconnlimit = 3 FROM pg_authid WHERE rolname = 'alice'") == "t")
    }
}
