import ArgumentParser
import FoundationEssentials
import PGKeep
import Repository

struct Repo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repo",
        abstract: "Manage a backup repository (full, differential and incremental backups with point-in-time restore).",
        subcommands: [Init.self, Export.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Create a repository for one cluster.",
            discussion: """
                Records the cluster (system identifier, version, WAL segment and block size), the \
                connection (without its password) and the compression, and creates the physical \
                replication slot that keeps WAL on the server for the repository's next job. Every \
                later command refuses another cluster's server.

                Then:
                  pgkeep backup --repo DIR --level full          a base backup and its WAL
                  pgkeep backup --repo DIR --level differential   what changed since the newest full
                  pgkeep backup --repo DIR --level incremental    the WAL since the previous job
                  pgkeep list --repo DIR                          what it holds, and the window
                  pgkeep restore --repo DIR --target-dir D --target-time '…'

                Example:
                  pgkeep repo init --repo /backups/db1 -d 'host=db1 user=backup' --compress zstd
                """)

        @Option(name: .long, help: ArgumentHelp("The repository directory (new, or empty).", valueName: "directory"))
        var repo: String

        @OptionGroup(title: "Connection") var connection: ConnectionOptions

        @Option(name: [.customShort("Z"), .long], help: ArgumentHelp("How stored files and WAL are compressed.", valueName: "zstd|lz4|gzip|none"))
        var compress: String = "zstd"

        @Option(name: .long, help: ArgumentHelp("The replication slot that keeps WAL for the next job.", valueName: "name"))
        var slot: String = "pgkeep"

        @OptionGroup var logging: LoggingOptions

        func run() throws {
            let logger = logging.makeLogger(quietest: .notice)
            var parameters = connection.parameters
            if connection.promptPassword { parameters.password = try readPassword() }
            var options = RepositoryMaintenance.InitOptions(repository: absolute(repo), connection: parameters)
            options.compression = compress
            options.slot = slot
            do {
                let config = try RepositoryMaintenance.initialize(options, logger: logger)
                print("repository created: \(absolute(repo))")
                print("  cluster \(config.systemIdentifier), PostgreSQL \(config.serverVersion / 10000), WAL segments of \(config.walSegmentSize >> 20) MB, slot \(config.slot), \(config.compression)")
            } catch {
                logger.error("\(error)")
                throw ExitCode(error.exitCode)
            }
        }
    }
}

extension Repo {
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Write one stored backup out as a backup directory, as the server sent it.",
            discussion: """
                The files of --backup ID decompressed into --target-dir with its backup_manifest: \
                a full backup as pg_basebackup would have written it, a 17+ differential with its \
                INCREMENTAL files (combine with pg_combinebackup FULL DIFF -o OUT). Each file is \
                checked against the manifest as it is written. For a data directory to start, \
                use restore --repo.
                """)

        @Option(name: .long, help: ArgumentHelp("The repository directory.", valueName: "directory"))
        var repo: String

        @Option(name: .customLong("backup"), help: ArgumentHelp("The backup's id (pgkeep list shows them).", valueName: "id"))
        var backup: String

        @Option(name: [.customShort("D"), .customLong("target-dir")], help: ArgumentHelp("Where to write it (new, or empty).", valueName: "directory"))
        var targetDirectory: String

        @Option(name: [.customShort("T"), .customLong("tablespace-mapping")], help: ArgumentHelp(
            "Write the tablespace at OLD into NEW (repeatable).", valueName: "OLD=NEW"))
        var tablespaceMappings: [String] = []

        @OptionGroup var logging: LoggingOptions

        func run() throws {
            let logger = logging.makeLogger()
            var configuration = RepositoryRestoreJob.Configuration(repository: absolute(repo), targetDirectory: absolute(targetDirectory),
                                                                   executable: currentExecutable())
            for mapping in tablespaceMappings {
                do { try configuration.tablespaceMapping.add(mapping) } catch { throw ValidationError("\(error)") }
            }
            configuration.backup = backup
            configuration.exportAsBackup = true
            do {
                let summary = try RepositoryRestoreJob(configuration: configuration, observer: JobObserver(logger: logger)).run()
                print("exported backup \(summary.backup) into \(summary.targetDirectory): \(summary.files) files")
            } catch {
                logger.error("\(error)")
                throw ExitCode(error.exitCode)
            }
        }
    }
}
