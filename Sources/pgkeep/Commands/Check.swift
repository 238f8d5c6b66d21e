import ArgumentParser
import FoundationEssentials
import PGKeep
import Repository

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Is this server ready for pgkeep? Each item, and its fix.",
        discussion: """
            Connects as an ordinary client and as a replication client and checks: the server \
            version, the role's REPLICATION attribute, a pg_hba.conf line for replication, \
            wal_level, free WAL senders and replication slots, summarize_wal (17+, for \
            differentials), EXECUTE on pg_switch_wal() (incremental jobs). With --repo: the \
            repository's slot (present, how much WAL it holds back) and its WAL directory \
            (writable, free space); --slot and --directory do the same for a receive-wal setup.

            Exit status: 0 when everything is ready (warnings are advice), 1 when an item failed.

            Examples:
              pgkeep check -d 'host=db1 user=backup dbname=postgres'
              pgkeep check --repo /backups/db1 --json
            """)

    @OptionGroup(title: "Connection") var connection: ConnectionOptions

    @Option(name: .long, help: ArgumentHelp("A repository: its connection (unless -d), slot and WAL directory are checked too.", valueName: "directory"))
    var repo: String?

    @Option(name: [.customShort("S"), .long], help: ArgumentHelp("A replication slot that should exist (receive-wal's).", valueName: "slot"))
    var slot: String?

    @Option(name: [.customShort("D"), .customLong("directory")], help: ArgumentHelp("An archive directory that should be writable (receive-wal's).", valueName: "directory"))
    var directory: String?

    @Flag(name: .long, help: "Print the result as JSON: {\"ready\": …, \"items\": [{\"name\", \"status\", \"detail\", \"fix\"}]}.")
    var json = false

    func run() throws {
        var parameters = connection.parameters
        if connection.promptPassword { parameters.password = try readPassword() }
        var configuration = ReadinessCheck.Configuration(connection: parameters)
        configuration.slot = slot
        configuration.archiveDirectory = directory.map(absolute)
        if let repo {
            let layout = RepositoryLayout(root: absolute(repo))
            do {
                let repository = try Repository.open(layout)
                configuration.connection = try repository.connectionParameters(override: connection.isGiven ? parameters : nil)
                configuration.slot = configuration.slot ?? repository.config.slot
                configuration.archiveDirectory = configuration.archiveDirectory ?? layout.walDirectory
                configuration.repository = true
            } catch {
                writeStandardError("pgkeep: error: \(error)\n")
                throw ExitCode(2)
            }
        }
        let items = Readiness.evaluate(ReadinessCheck.gather(configuration))
        let ready = Readiness.isReady(items)
        if json {
            struct Output: Encodable { let ready: Bool; let items: [ReadinessItem] }
            try printJSON(Output(ready: ready, items: items))
        } else {
            for item in items {
                let mark = switch item.status { case .ok: "ok  "; case .warning: "WARN"; case .failed: "FAIL" }
                print("\(mark)  \(item.name): \(item.detail)")
                if let fix = item.fix { print("      fix: \(fix)") }
            }
            print(ready ? "ready" : "not ready")
        }
        if !ready { throw ExitCode(1) }
    }
}
