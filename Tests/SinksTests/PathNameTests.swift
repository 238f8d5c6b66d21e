import Testing
import Sinks

/// basename and dirname, as POSIX reads them.
@Suite struct PathNameTests {
    @Test func lastComponentIsBasename() {
        #expect(PathName.lastComponent("/usr/lib/postgresql/17/bin/pg_dump") == "pg_dump")
        #expect(PathName.lastComponent("pg_dump") == "pg_dump")
        #expect(PathName.lastComponent("/tmp/dir/") == "dir")
        #expect(PathName.lastComponent("/") == "/")
        #expect(PathName.lastComponent("") == "")
    }

    @Test func directoryIsDirname() {
        #expect(PathName.directory("/usr/bin/pgkeep") == "/usr/bin")
        #expect(PathName.directory("pgkeep") == ".")
        #expect(PathName.directory("/pgkeep") == "/")
        #expect(PathName.directory("/a//b/") == "/a")
        #expect(PathName.directory("/") == "/")
        #expect(PathName.directory("a/b") == "a")
    }
}
