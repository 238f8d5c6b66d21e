import ArgumentParser
import PGConnection

/// How to reach the server: the same flags as psql and pg_basebackup.
struct ConnectionOptions: ParsableArguments {
    @Option(name: [.customShort("d"), .long], help: ArgumentHelp(
        "Connection string or URI (e.g. 'host=db1 user=backup' or postgresql://backup@db1).",
        valueName: "conninfo"))
    var dbname: String?

    @Option(name: [.customShort("h"), .long], help: "Server host name or socket directory.")
    var host: String?

    @Option(name: [.customShort("p"), .long], help: "Server port.")
    var port: String?

    @Option(name: [.customShort("U"), .long], help: "Role to connect as (needs the REPLICATION attribute).")
    var username: String?

    @Flag(name: [.customShort("w"), .customLong("no-password")], help: "Never prompt for a password.")
    var noPassword = false

    @Flag(name: [.customShort("W"), .customLong("password")], help: "Prompt for a password before connecting.")
    var promptPassword = false

    /// Whether any of -d, -h, -p, -U was given.
    var isGiven: Bool { dbname != nil || host != nil || port != nil || username != nil }

    var parameters: ConnectionParameters {
        ConnectionParameters(connectionString: dbname, host: host, port: port, user: username)
    }
}
