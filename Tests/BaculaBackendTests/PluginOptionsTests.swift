import Testing
@testable import BaculaBackend

/// The FileSet's plugin string, as the seed plugin's users write it.
@Suite struct PluginOptionsTests {
    @Test("options with bare, single- and double-quoted values, and flags")
    func parses() throws {
        let options = try PluginOptions.parse(#"pgkeep: mode=dump service=db1 conninfo='host=/run/postgresql user=postgres' database=app* database="Big \"Co\"" dump_opt="--lock-wait-timeout=10s -Z 3" abort_on_error timeout=60 fast_backup state_dir=/var/lib/x"#)
        #expect(options.mode == .dump)
        #expect(options.service == "db1")
        #expect(options.conninfo == "host=/run/postgresql user=postgres")
        #expect(options.database == ["app*", #"Big "Co""#])
        #expect(options.dumpOptions == "--lock-wait-timeout=10s -Z 3")
        #expect(options.abortOnError && options.fastCheckpoint)
        #expect(options.timeoutSeconds == 60)
        #expect(options.stateDirectory == "/var/lib/x")
        #expect(options.prefix == "/@PG/db1/")
    }

    @Test("defaults: PITR, service main, the service file when named")
    func defaults() throws {
        let options = try PluginOptions.parse("pgkeep:")
        #expect(options.mode == .pitr && options.service == "main" && options.conninfo == nil)
        #expect(options.connection.connectionString == nil)
        #expect(try PluginOptions.parse("pgkeep: service=prod").connection.connectionString == "service=prod")
    }

    @Test("an unknown option, a flag with a value, an open quote: each named", arguments: [
        ("pgkeep: mode=pitr compress=zstd", "unknown plugin option compress"),
        ("pgkeep: abort_on_error=yes", "plugin option abort_on_error takes no value"),
        ("pgkeep: conninfo='host=x", "plugin option conninfo has an unclosed '"),
        ("pgkeep: mode=files", "plugin option mode is pitr or dump, not files"),
        ("pgkeep: service=../x", "plugin option service '../x' must be letters, digits, '_', '-' or '.'"),
        ("pgkeep: timeout=0", "plugin option timeout is a number of seconds"),
    ])
    func refusals(command: String, message: String) {
        #expect(throws: PluginOptions.Invalid(description: message)) { try PluginOptions.parse(command) }
    }

    @Test("restored paths stay inside their directory", arguments: [
        ("/tmp/r/@PG/main/data/base/1/2", "/tmp/r", "data/base/1/2"),
        ("/@PG/main/roles.sql", "", "roles.sql"),
        ("app2/@PG/main/app/data.sqlc", "app2", "app/data.sqlc"),
        ("/tmp/r/@PG/main/data/base/", "/tmp/r", "data/base"),
    ])
    func restoredPaths(path: String, whereDirectory: String, expected: String) throws {
        #expect(try restoredRelativePath(path, where: whereDirectory, prefix: "/@PG/main/") == expected)
    }

    @Test("a path outside the backup, or climbing out, is refused", arguments: [
        "/tmp/r/@PG/other/data/x", "/tmp/r/@PG/main/data/../../../etc/passwd", "/etc/passwd",
    ])
    func hostilePaths(path: String) {
        #expect(throws: (any Error).self) { try restoredRelativePath(path, where: "/tmp/r", prefix: "/@PG/main/") }
    }

    @Test("dump restore targets: original, a new name, a directory; nothing else")
    func dumpTargets() throws {
        #expect(try DumpRestoreSession.target(where: "") == .original)
        #expect(try DumpRestoreSession.target(where: "/") == .original)
        #expect(try DumpRestoreSession.target(where: "app_copy2") == .newName("app_copy2"))
        #expect(try DumpRestoreSession.target(where: "/srv/restore") == .directory("/srv/restore"))
        #expect(throws: (any Error).self) { try DumpRestoreSession.target(where: "App-Copy") }
    }
}
