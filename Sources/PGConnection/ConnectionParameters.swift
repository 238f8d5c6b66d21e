import CLibPQ

/// How to reach the server, exactly as psql takes it: a conninfo string or URI (`-d`), plus
/// `-h -p -U` overrides. Everything else — PGHOST/PGPORT/PGUSER, PGPASSFILE and ~/.pgpass,
/// PGSERVICE and service files, TLS settings — is libpq's to resolve; nothing is parsed here.
/// Never logged: it may hold a password.
public struct ConnectionParameters: Sendable {
    public var connectionString: String?
    public var host: String?
    public var port: String?
    public var user: String?
    /// Set after prompting (`-W`, or when the server asks and a terminal is there).
    public var password: String?
    public var applicationName: String = "pgkeep"

    public init(connectionString: String? = nil, host: String? = nil, port: String? = nil, user: String? = nil) {
        self.connectionString = connectionString
        self.host = host
        self.port = port
        self.user = user
    }

    /// The database the connection string names itself (`-d 'dbname=app'`, a URI's path, or a
    /// plain name), not what libpq would default to; nil when it names none. `-R` keeps it in
    /// primary_conninfo, as pg_basebackup does (17's slot synchronisation needs it).
    public var explicitDatabaseName: String? {
        guard let connectionString, !connectionString.isEmpty else { return nil }
        let isConninfo = connectionString.contains("=") || connectionString.hasPrefix("postgresql://") || connectionString.hasPrefix("postgres://")
        guard isConninfo else { return connectionString }
        guard let options = PQconninfoParse(connectionString, nil) else { return nil }
        defer { PQconninfoFree(options) }
        var option = options
        while let keyword = option.pointee.keyword {
            if String(cString: keyword) == "dbname", let value = option.pointee.val, value.pointee != 0 {
                let name = String(cString: value)
                return name == "replication" ? nil : name
            }
            option += 1
        }
        return nil
    }

    /// A conninfo value: bare when safe, else single-quoted with \\ and ' backslash-escaped.
    public static func conninfoValue(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.contains { $0 == " " || $0 == "'" || $0 == "\\" || $0 == "\t" || $0 == "\n" }
        guard needsQuotes else { return value }
        var out = "'"
        for character in value {
            if character == "'" || character == "\\" { out.append("\\") }
            out.append(character)
        }
        return out + "'"
    }

    public enum Mode: Sendable {
        /// `replication=true`: replication commands only (BASE_BACKUP, START_REPLICATION, …).
        case physicalReplication
        /// `replication=database`: replication commands and SQL.
        case databaseReplication
        /// An ordinary SQL connection.
        case sql
    }

    /// Keyword/value pairs for PQconnectdbParams with expand_dbname=1. Later pairs win, so the
    /// `-h -p -U` overrides come after the expanded connection string, and the replication mode last.
    func keywordValues(mode: Mode) -> [(String, String)] {
        var pairs: [(String, String)] = []
        if let connectionString { pairs.append(("dbname", connectionString)) }
        if let host { pairs.append(("host", host)) }
        if let port { pairs.append(("port", port)) }
        if let user { pairs.append(("user", user)) }
        if let password { pairs.append(("password", password)) }
        pairs.append(("fallback_application_name", applicationName))
        switch mode {
        case .physicalReplication: pairs.append(("replication", "true"))
        case .databaseReplication: pairs.append(("replication", "database"))
        case .sql: break
        }
        if mode == .physicalReplication {
            // A physical walsender ignores dbname; "replication" keeps pgpass/pg_hba lookups as pg_basebackup does.
            if connectionString == nil { pairs.append(("dbname", "replication")) }
        }
        return pairs
    }
}
