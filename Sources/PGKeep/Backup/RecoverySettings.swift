import PGConnection

/// The lines `-R` appends to postgresql.auto.conf, written as pg_basebackup writes them:
/// primary_conninfo from the connection's own options, quoted for conninfo and then for the GUC file.
enum RecoverySettings {
    static func lines(connectionOptions: [(String, String)], slot: String?, databaseName: String? = nil) -> String {
        var pairs = connectionOptions
        if let databaseName { pairs.append(("dbname", databaseName)) }
        let conninfo = pairs.map { "\($0.0)=\(conninfoValue($0.1))" }.joined(separator: " ")
        var text = "# written by pgkeep backup -R\n"
        text += "primary_conninfo = '\(gucEscape(conninfo))'\n"
        if let slot { text += "primary_slot_name = '\(gucEscape(slot))'\n" }
        return text
    }

    static func conninfoValue(_ value: String) -> String { ConnectionParameters.conninfoValue(value) }

    /// A postgresql.conf string body: single quotes and backslashes doubled.
    static func gucEscape(_ value: String) -> String {
        var out = ""
        for character in value {
            if character == "'" || character == "\\" { out.append(character) }
            out.append(character)
        }
        return out
    }
}
