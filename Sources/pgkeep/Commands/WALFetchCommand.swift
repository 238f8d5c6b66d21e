import ArgumentParser
import FoundationEssentials
import PGKeep

struct WALFetchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wal-fetch",
        abstract: "restore_command for a receive-wal archive: copy one WAL file out of it.",
        discussion: """
            PostgreSQL runs it during recovery as: pgkeep wal-fetch %f %p --wal-archive DIR. \
            Compressed segments are decompressed. Exit 0: copied; 1: the archive does not have \
            the file (recovery expects this at the end of the archive); 126: the file is there \
            but cannot be read or decompressed — a status PostgreSQL treats as fatal, so recovery \
            stops instead of taking damaged WAL for the end of the archive. A .partial segment is \
            served only with --partial.
            """)

    @Argument(help: ArgumentHelp("The WAL file name (%f).", valueName: "file")) var file: String
    @Argument(help: ArgumentHelp("Where to write it (%p).", valueName: "path")) var path: String

    @Option(name: .customLong("wal-archive"), help: ArgumentHelp("The archive directory.", valueName: "directory"))
    var walArchive: String

    @Flag(name: .customLong("partial"), help: "Serve NAME.partial when the archive has no complete NAME.")
    var partial = false

    func run() throws {
        do {
            switch try WALFetch.fetch(file, to: path, archive: walArchive, allowPartial: partial) {
            case .fetched: return
            case .notFound: throw ExitCode(1)
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError("pgkeep wal-fetch: error: \(error)\n")
            throw ExitCode(126)
        }
    }
}
