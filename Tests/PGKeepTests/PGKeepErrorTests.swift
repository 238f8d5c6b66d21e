import Testing
import PGConnection
import WAL
@testable import PGKeep

/// Errors are classified by SQLSTATE and libpq's state, in any language.
@Suite struct PGKeepErrorTests {
    @Test("the SQLSTATE comes out of libpq's verbose message, whatever the language; the location line goes")
    func verboseParsing() {
        let german = """
            Verbindung zum Server auf Socket »/tmp/s/.s.PGSQL.5432« fehlgeschlagen: FATAL:  28P01: Passwort-Authentifizierung für Benutzer »pwuser« fehlgeschlagen
            ORT:  auth_failed, auth.c:323
            """
        let (state, display) = ConnectFailure.parseVerbose(german)
        #expect(state == "28P01")
        #expect(display == "Verbindung zum Server auf Socket »/tmp/s/.s.PGSQL.5432« fehlgeschlagen: FATAL:  Passwort-Authentifizierung für Benutzer »pwuser« fehlgeschlagen")
        let refused = ConnectFailure.parseVerbose("connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?")
        #expect(refused.sqlState == nil)
        // Two attempts (SSL, then plain): the last server error counts.
        let two = ConnectFailure.parseVerbose("FATAL:  28000: no pg_hba.conf entry\nFATAL:  42501: permission denied to start WAL sender\nDETAIL:  Only roles with the REPLICATION attribute may start a WAL sender process.")
        #expect(two.sqlState == "42501")
    }

    @Test("connection failures: authentication and permission stop (exit 3), unreachable and busy servers are retried")
    func classification() {
        func connect(_ state: String?, needsPassword: Bool = false) -> PGKeepError {
            PGKeepError.mapping(ConnectionError.connectFailed(ConnectFailure(message: "x", sqlState: state, passwordNeeded: needsPassword)))
        }
        #expect(connect("28P01").code == .authentication && !connect("28P01").isTransient && connect("28P01").exitCode == 3)
        #expect(connect(nil, needsPassword: true).code == .authentication && connect(nil, needsPassword: true).passwordNeeded)
        #expect(connect("28000").code == .authentication)
        #expect(connect("42501").code == .permission && connect("42501").exitCode == 3 && !connect("42501").isTransient)
        #expect(connect("42501").hint?.contains("ALTER ROLE <name> REPLICATION") == true)
        #expect(connect("53300").isTransient && connect("53300").exitCode == 3)
        #expect(connect("57P03").isTransient)
        #expect(connect(nil).code == .connection && connect(nil).isTransient && connect(nil).exitCode == 3)
    }

    @Test("errors on an established connection, by SQLSTATE; anything unknown is internal, not storage")
    func serverErrors() {
        func server(_ state: String) -> PGKeepError {
            PGKeepError.mapping(ConnectionError.server(ServerError(severity: "FATAL", sqlState: state, message: "Meldung")))
        }
        #expect(server("57P01").isTransient && server("57P01").exitCode == 1)
        #expect(server("55006").isTransient)
        #expect(server("08006").code == .connection)
        #expect(!server("58P01").isTransient)
        #expect(server("XX001").code == .checksumFailure)
        #expect(server("42704").hint?.contains("--create-slot") == true)
        #expect(PGKeepError.mapping(ConnectionError.lost("gone")).isTransient)
        struct Odd: Error {}
        #expect(PGKeepError.mapping(Odd()).code == .internalError)
        // A failure on the WAL streaming thread keeps its kind.
        let wrapped = PGKeepError.mapping(WALStreamError("x", underlying: ConnectionError.server(ServerError(severity: "ERROR", sqlState: "42710", message: "exists"))))
        #expect(wrapped.code == .serverState && wrapped.message.hasPrefix("WAL streaming failed"))
    }

    @Test("the checksum failure count is the server's total, read from its SQLSTATE-01000 warning")
    func checksumCount() throws {
        func notice(_ state: String, _ message: String) -> ServerNotice {
            ServerNotice(severity: "WARNING", localizedSeverity: "WARNUNG", sqlState: state, message: message, detail: nil)
        }
        let error = ConnectionError.server(ServerError(severity: "ERROR", sqlState: "XX001", message: "Prüfsummenfehler"))
        let many = (0..<5).map { notice("XX001", "Block \($0) in Datei »base/5/16384«") }
            + [notice("XX001", "weitere Fehler …"), notice("XX001", "Datei hat insgesamt 6 Fehler"), notice("01000", "insgesamt 6 Prüfsummenfehler")]
        let failure = try #require(BackupJob.checksumFailure(error, notices: many))
        #expect(failure.message.hasPrefix("the server found 6 data page checksum failures"), "\(failure.message)")
        let one = try #require(BackupJob.checksumFailure(error, notices: [notice("XX001", "Block 0")]))
        #expect(one.message.hasPrefix("the server found 1 data page checksum failure "))
    }
}
