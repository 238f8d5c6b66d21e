import Testing
@testable import pgkeep

/// Every spelling PostgreSQL's documentation and test suites use reads as getopt_long reads it.
@Suite struct GetoptArgumentsTests {
    func backup(_ arguments: String) throws -> [String] {
        try PGKeepCommand.normalizedArguments(["backup"] + arguments.split(separator: " ").map(String.init))
    }

    @Test("the option table comes from the command's own help")
    func table() {
        let table = GetoptTable(helpText: PGKeepCommand.helpMessage(for: Backup.self, includeHidden: true, columns: 10_000))
        #expect(table.short["F"] == .init(takesValue: true, long: "format"))
        #expect(table.short["P"] == .init(takesValue: false, long: "progress"))
        #expect(table.short["?"] == .init(takesValue: false, long: "help"))
        #expect(table.long["no-manifest"] == false)
        #expect(table.long["tablespace-mapping"] == true)
        #expect(table.long["record-stream"] == true, "hidden options too")
    }

    @Test("glued short values")
    func gluedShortValues() throws {
        #expect(try backup("-Ft -Fp -Xs -Xfetch -cfast -Z9 -Ddir -Upostgres -p5432") ==
                ["backup", "--format=t", "--format=p", "--wal-method=s", "--wal-method=fetch", "--checkpoint=fast",
                 "--compress=9", "--pgdata=dir", "--username=postgres", "--port=5432"])
    }

    @Test("separate short values, single letters, and a value that looks like an option")
    func separateValues() throws {
        #expect(try backup("-F t -X s -D - -l -x") == ["backup", "--format=t", "--wal-method=s", "--pgdata=-", "--label=-x"])
    }

    @Test("clusters of short flags, ending in an option that takes the rest")
    func clusters() throws {
        #expect(try backup("-vPRFt -vvz") == ["backup", "--verbose", "--progress", "--write-recovery-conf", "--format=t",
                                             "--verbose", "--verbose", "--gzip"])
    }

    @Test("--opt=value, --opt value, and unambiguous abbreviations")
    func longOptions() throws {
        #expect(try backup("--pgdata=/a --format tar --checkp=fast --wal-m stream --max-r=1M --progr") ==
                ["backup", "--pgdata=/a", "--format=tar", "--checkpoint=fast", "--wal-method=stream", "--max-rate=1M", "--progress"])
        // An empty value stays a value (pgkeep-fd.so passes --where "" for a restore in place).
        #expect(try PGKeepCommand.normalizedArguments(["backup", "--label", "", "-l", ""]) == ["backup", "--label", "", "--label", ""])
        #expect(try PGKeepCommand.normalizedArguments(["backup", "--label="]) == ["backup", "--label", ""])
        #expect(throws: GetoptArguments.Failure.self) { try backup("--c=fast") }
        #expect(throws: GetoptArguments.Failure.self) { try backup("--progress=yes") }
        #expect(throws: GetoptArguments.Failure.self) { try backup("-D") }
    }

    @Test("-Z N alone is gzip level N; -z is gzip")
    func compression() throws {
        #expect(try backup("-Z 5") == ["backup", "--compress=5"])
        #expect(try backup("-z") == ["backup", "--gzip"])
        let parsed = try Backup.parseAsRoot(Array(try backup("-Ft -z -D /x").dropFirst())) as! Backup
        #expect(parsed.gzip && parsed.format == .tar)
    }

    @Test("-V and --version answer for every command; -- ends the options")
    func versionAndEnd() throws {
        #expect(try backup("-D /x -V") == ["--version"])
        #expect(try PGKeepCommand.normalizedArguments(["verify", "--", "-odd-name"]) == ["verify", "--", "-odd-name"])
    }

    @Test("pg_receivewal and pg_verifybackup spellings")
    func otherTools() throws {
        #expect(try PGKeepCommand.normalizedArguments(["receive-wal", "-D/arch", "-Sarch", "--synchronous", "-Zlz4", "-s5", "-n"]) ==
                ["receive-wal", "--directory=/arch", "--slot=arch", "--synchronous", "--compress=lz4", "--status-interval=5", "--no-loop"])
        #expect(try PGKeepCommand.normalizedArguments(["verify", "-nq", "-wpg_wal2", "-i", "x", "-e", "/b"]) ==
                ["verify", "--no-parse-wal", "--quiet", "--wal-directory=pg_wal2", "--ignore=x", "--exit-on-error", "/b"])
    }
}

/// Contradictions and bad specifications are refused before anything connects.
@Suite struct ValidationTests {
    @Test("refused before connecting", arguments: [
        ["receive-wal", "-D", "/a", "--synchronous", "--no-sync"],
        ["backup", "-D", "/b", "-Z", "server-gzip:"],
        ["backup", "-D", "/b", "--compress=gzip:"],
        ["backup", "-D", "/b", "-Z", "gzip:level=9,"],
        ["backup", "-D", "/b", "-z", "-Z", "lz4"],
        ["backup", "--target", "server:/x", "-D", "/b"],
        ["backup", "-D", "-", "--json", "-Ft", "-Xnone"],
        ["backup", "--target", "server", "-Xnone"],
        ["verify", "-P", "-q", "/b"],
    ])
    func refused(arguments: [String]) throws {
        #expect(throws: (any Error).self) { _ = try PGKeepCommand.parseAsRoot(try PGKeepCommand.normalizedArguments(arguments)) }
    }
}
