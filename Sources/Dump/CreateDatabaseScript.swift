import PGConnection
import PGKeep
import PGWire

/// `<db>/createdb.sql`: everything that makes the database itself — CREATE DATABASE with its
/// owner, encoding, locale, template0, tablespace and connection limit; its settings (ALTER
/// DATABASE … SET, ALTER ROLE … IN DATABASE … SET); its grants and comment. The server quotes
/// every name (format('%I')), and each statement names the database as `quote_ident(name)` and
/// nowhere else, so a restore under a new name replaces exactly that.
public enum CreateDatabaseScript {
    /// The first line, which says whose script this is and how the name is written in it.
    static let header = "-- pgkeep createdb: database "

    public static func make(for name: String, connection parameters: ConnectionParameters) throws -> String {
        let server = try ReplicationConnection(parameters, mode: .sql)
        let version = server.serverVersion
        let literal = quoteLiteral(name)
        // Locale columns by version: 15 added the provider and ICU locale, 16 ICU rules, 17
        // renamed daticulocale to datlocale (and added the builtin provider).
        var locale = "''"
        if version.major >= 15 {
            let localeColumn = version.major >= 17 ? "datlocale" : "daticulocale"
            locale = """
                ' LOCALE_PROVIDER = ' || CASE datlocprovider WHEN 'i' THEN 'icu' WHEN 'b' THEN 'builtin' ELSE 'libc' END
                || CASE WHEN \(localeColumn) IS NOT NULL THEN \(version.major >= 17 ? "CASE datlocprovider WHEN 'i' THEN ' ICU_LOCALE = ' ELSE ' BUILTIN_LOCALE = ' END" : "' ICU_LOCALE = '") || quote_literal(\(localeColumn)) ELSE '' END
                """
            if version.major >= 16 { locale += " || CASE WHEN daticurules IS NOT NULL THEN ' ICU_RULES = ' || quote_literal(daticurules) ELSE '' END" }
        }
        let rows = try server.query("""
            SELECT format('CREATE DATABASE %I WITH TEMPLATE = template0 ENCODING = %L', datname, pg_encoding_to_char(encoding))
                   || \(locale)
                   || format(' LC_COLLATE = %L LC_CTYPE = %L', datcollate, datctype)
                   || format(' OWNER = %I', pg_get_userbyid(datdba))
                   || CASE WHEN t.spcname <> 'pg_default' THEN format(' TABLESPACE = %I', t.spcname) ELSE '' END
                   || CASE WHEN datconnlimit <> -1 THEN ' CONNECTION LIMIT = ' || datconnlimit ELSE '' END || ';',
                   quote_ident(datname), datacl IS NULL,
                   shobj_description(d.oid, 'pg_database')
            FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace
            WHERE datname = \(literal)
            """)
        guard let row = rows.first, let create = row[0], let quoted = row[1] else {
            throw PGKeepError.invalidConfiguration("database \(name) does not exist")
        }
        var lines = [header + quoted, create]
        // Settings: for everyone in this database, and per role.
        for setting in try server.query("""
            SELECT CASE WHEN s.setrole = 0 THEN format('ALTER DATABASE %I SET %s;', d.datname, config.stmt)
                        ELSE format('ALTER ROLE %I IN DATABASE %I SET %s;', pg_get_userbyid(s.setrole), d.datname, config.stmt) END
            FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase,
                 LATERAL (SELECT split_part(c, '=', 1) || ' TO ' ||
                                 -- list settings keep their own quoting, as pg_dump writes them
                                 CASE WHEN split_part(c, '=', 1) IN ('search_path', 'temp_tablespaces', 'session_preload_libraries',
                                                                      'shared_preload_libraries', 'local_preload_libraries')
                                      THEN substr(c, strpos(c, '=') + 1) ELSE quote_literal(substr(c, strpos(c, '=') + 1)) END AS stmt
                          FROM unnest(s.setconfig) c) config
            WHERE d.datname = \(literal)
            ORDER BY s.setrole, 1
            """) {
            if let line = setting[0] { lines.append(line) }
        }
        // Grants: the defaults unless the database has an ACL of its own.
        if row[2] == "f" {
            lines.append("REVOKE ALL ON DATABASE \(quoted) FROM PUBLIC;")
            for grant in try server.query("""
                SELECT format('GRANT %s ON DATABASE %I TO %s%s;', a.privilege_type, d.datname,
                              CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                              CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
                FROM pg_database d, LATERAL aclexplode(d.datacl) a
                WHERE d.datname = \(literal) AND a.grantee <> d.datdba
                ORDER BY a.grantee, a.privilege_type
                """) {
                if let line = grant[0] { lines.append(line) }
            }
        }
        if let comment = row[3] { lines.append("COMMENT ON DATABASE \(quoted) IS \(quoteLiteral(comment));") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The script for another database name: every statement's database name replaced.
    public static func renamed(_ script: String, to newName: String, quotedNewName: String) throws -> String {
        var lines = script.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let first = lines.first, first.hasPrefix(header) else {
            throw PGKeepError.verification("createdb.sql was not written by pgkeep dump (its first line is not \"\(header)…\")")
        }
        let old = String(first.dropFirst(header.count))
        lines[0] = header + quotedNewName
        for index in lines.indices.dropFirst() {
            let line = lines[index]
            for form in ["DATABASE \(old) ", "DATABASE \(old);"] where line.contains(form) {
                lines[index] = line.replacing(form, with: "DATABASE \(quotedNewName)" + String(form.last!))
                break
            }
        }
        return lines.joined(separator: "\n")
    }
}
