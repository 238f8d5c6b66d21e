import ArgumentParser
import BaculaBackend
import FoundationEssentials
import PGKeep
import Sinks
#if canImport(Glibc)
import Glibc
#endif

struct Bacula: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bacula",
        abstract: "The Bacula File Daemon plugin (pgkeep-fd.so): install it.",
        discussion: """
            pgkeep-fd.so lets Bacula back up PostgreSQL with a FileSet line; Bacula's levels \
            Full, Incremental and Differential are pgkeep's full backup, the WAL since the \
            previous job, and what changed since the full. Every job runs this pgkeep as its \
            backend.

              FileSet {
                Name = "pg"
                Include {
                  Options { Signature = MD5 }
                  Plugin = "pgkeep: mode=pitr service=main conninfo='host=/run/postgresql user=postgres'"
                }
              }

            Plugin options: mode=pitr|dump  service=NAME (a pg_service.conf entry; names the \
            backup: /@PG/NAME/…)  conninfo='…'  user=U  database=PATTERN (dump, repeatable)  \
            dump_opt="…"  abort_on_error  timeout=300  bin_dir=DIR  pgpass=FILE  \
            state_dir=DIR (default /var/lib/pgkeep/bacula)  fast_backup  pgkeep=PATH.

            Restore: where=/dir writes /dir/NAME/data (ready to start: the job log says how), \
            its WAL in /dir/NAME/wal. In dump mode where= empty loads into the original \
            databases, where=newname creates one database under that name, where=/dir writes \
            the files for pgkeep restore-dump.
            """,
        subcommands: [InstallPlugin.self, Backend.self])

    struct InstallPlugin: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "install-plugin",
            abstract: "Install pgkeep-fd.so into Bacula's plugin directory, wired to this pgkeep.",
            discussion: """
                Copies pgkeep-fd.so (from beside this program, or the package's in /usr/lib/bacula) to \
                DIR/pgkeep-fd.so and writes DIR/pgkeep-fd.conf naming this program, which every \
                job runs as its backend. bacula-fd.conf's FileDaemon resource then needs \
                `Plugin Directory = DIR` (bacula-fd loads every *-fd.so there when it starts: \
                restart it).

                Example (Debian):
                  pgkeep bacula install-plugin --plugin-dir /usr/lib/bacula
                """)

        @Option(name: .customLong("plugin-dir"), help: ArgumentHelp("Bacula's plugin directory.", valueName: "directory"))
        var pluginDir: String

        @Option(name: .long, help: ArgumentHelp("The pgkeep-fd.so to install (default: beside this program, else /usr/lib/bacula's).", valueName: "file"))
        var plugin: String?

        func run() throws {
            let executable = currentExecutable()
            let directory = absolute(pluginDir)
            let candidates = plugin.map { [absolute($0)] }
                ?? [PathName.directory(executable) + "/pgkeep-fd.so", "/usr/lib/bacula/pgkeep-fd.so"]
            guard let source = candidates.first(where: { access($0, R_OK) == 0 }) else {
                writeStandardError("pgkeep: error: pgkeep-fd.so not found (looked in \(candidates.joined(separator: ", "))): build it with tools/build-plugin.sh, or give --plugin FILE\n")
                throw ExitCode(1)
            }
            guard let bytes = try readWholeFile(source) else { throw ExitCode(1) }
            do {
                try TargetDirectory.makeDirectories(directory, mode: 0o755)
                try Durability.writeFileAtomically(bytes, named: "pgkeep-fd.so", in: directory, sync: true)
                try Durability.writeFileAtomically(Array("# Written by pgkeep bacula install-plugin: the program pgkeep-fd.so runs.\npgkeep=\(executable)\n".utf8),
                                                   named: "pgkeep-fd.conf", in: directory, sync: true)
                chmod(directory + "/pgkeep-fd.so", 0o644)
                chmod(directory + "/pgkeep-fd.conf", 0o644)
            } catch {
                writeStandardError("pgkeep: error: \(error)\n")
                throw ExitCode(1)
            }
            print("installed \(directory)/pgkeep-fd.so (backend: \(executable))")
            print("bacula-fd.conf, FileDaemon resource: Plugin Directory = \(directory) (then restart bacula-fd)")
        }
    }

    /// Run by pgkeep-fd.so, with its socket as standard input and output.
    struct Backend: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "backend",
            abstract: "The plugin's backend (run by pgkeep-fd.so, not by hand).",
            shouldDisplay: false)

        @Option var mode: BackendRequest.Mode
        @Option var level: String = "F"
        @Option var since: Int64 = 0
        @Option(name: .customLong("job-id")) var jobID: Int = 0
        @Option(name: .customLong("job-name")) var jobName: String = ""
        @Option var accurate: Int = 0
        @Option(name: .customLong("where")) var whereDirectory: String = ""
        @Option var replace: String = "a"
        @Option var command: String

        func run() throws {
            var request = BackendRequest(mode: mode, level: level.first ?? "F", command: command)
            request.since = since
            request.jobID = jobID
            request.jobName = jobName
            request.accurate = accurate != 0
            request.whereDirectory = whereDirectory
            request.replace = replace.first ?? "a"
            // Writing to a plugin that went away must fail the write, not kill the process silently.
            signal(SIGPIPE, SIG_IGN)
            let backend = BaculaBackend(request: request, channel: FrameChannel(), executable: currentExecutable(),
                                        cancellation: CancellationToken())
            if !backend.run() { throw ExitCode(1) }
        }
    }
}

extension BackendRequest.Mode: ExpressibleByArgument {}
