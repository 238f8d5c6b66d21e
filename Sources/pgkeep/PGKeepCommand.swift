import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

@main
struct PGKeepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pgkeep",
        abstract: "PostgreSQL backups over the replication protocol.",
        discussion: """
            pgkeep never copies a data directory behind the server's back: it asks the server for \
            a base backup (BASE_BACKUP) and streams the WAL that makes it consistent \
            (START_REPLICATION), like pg_basebackup. Connection options work exactly as in psql: \
            -d takes a conninfo string or URI, and PGHOST, PGPORT, PGUSER, ~/.pgpass and service \
            files are honoured.
            """,
        version: "0.1.0",
        subcommands: [Backup.self, ReceiveWAL.self, Verify.self, Restore.self, WALFetchCommand.self],
        // -h is the host, as in every PostgreSQL tool; help is --help or -?.
        helpNames: [.long, .customShort("?")]
    )

    static func main() {
        // libpq's own messages in the user's language, as PostgreSQL's tools show them (numbers
        // and the rest stay in the C locale: pgkeep's output is parsed by scripts).
        setlocale(LC_CTYPE, "")
        setlocale(LC_MESSAGES, "")
        main(nil)
    }
}
