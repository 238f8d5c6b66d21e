import ArgumentParser
import PGKeep
import Repository

struct Expire: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "expire",
        abstract: "Remove a repository's old backups and the WAL only they needed.",
        discussion: """
            --keep-full N keeps the N newest full backups and everything taken after the oldest of \
            them; --keep-days D keeps every point in time of the last D days (the backups finished \
            in them, and the newest full before them). A backup another kept backup depends on is \
            never removed, nor WAL a kept backup needs to reach any point of its window.

            Examples:
              pgkeep expire --repo /backups/db1 --keep-full 2 --dry-run
              pgkeep expire --repo /backups/db1 --keep-days 14
            """)

    @Option(name: .long, help: ArgumentHelp("The repository directory.", valueName: "directory"))
    var repo: String

    @Option(name: .customLong("keep-full"), help: ArgumentHelp("Keep this many full backups (and what follows them).", valueName: "N"))
    var keepFull: Int?

    @Option(name: .customLong("keep-days"), help: ArgumentHelp("Keep every point in time of this many days.", valueName: "D"))
    var keepDays: Int?

    @Flag(name: .customLong("dry-run"), help: "Print what would be removed, and why; remove nothing.")
    var dryRun = false

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard (keepFull == nil) != (keepDays == nil) else { throw ValidationError("give one of --keep-full N or --keep-days D") }
        if let keepFull, keepFull < 1 { throw ValidationError("--keep-full must be at least 1") }
        if let keepDays, keepDays < 0 { throw ValidationError("--keep-days cannot be negative") }
    }

    func run() throws {
        let logger = logging.makeLogger(quietest: .notice)
        let rule: ExpirePlan.Rule = keepFull.map { .keepFull($0) } ?? .keepDays(keepDays!)
        do {
            let result = try RepositoryMaintenance.expire(absolute(repo), rule: rule, dryRun: dryRun, logger: logger)
            if dryRun {
                for removal in result.plan.removals { print("would remove backup \(removal.id): \(removal.reason)") }
                if !result.walSegmentsRemoved.isEmpty {
                    print("would remove \(result.walSegmentsRemoved.count) WAL segment(s), \(result.walSegmentsRemoved.first!) to \(result.walSegmentsRemoved.last!): older than the oldest kept backup's start (\(result.plan.walBefore!))")
                }
                if result.plan.removals.isEmpty && result.walSegmentsRemoved.isEmpty { print("nothing to remove") }
                print("kept: \(result.plan.kept.joined(separator: ", "))")
            } else if result.plan.removals.isEmpty && result.walSegmentsRemoved.isEmpty {
                print("nothing to remove")
            }
        } catch {
            logger.error("\(error)")
            throw ExitCode(error.exitCode)
        }
    }
}
