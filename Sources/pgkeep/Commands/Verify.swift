import ArgumentParser
import FoundationEssentials
import PGKeep
import Repository

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a backup against its manifest, and the WAL it needs.",
        discussion: """
            Checks, like pg_verifybackup: backup_manifest's own checksum; every file it lists is \
            present, with the listed size and checksum (CRC32C, SHA224/256/384/512); no file \
            is there that it does not list (postgresql.auto.conf, recovery.signal and \
            standby.signal excepted); and the WAL from the backup's start to its end is all \
            present and readable: segment and page headers, each record whole, chained to the \
            one before and matching its CRC. WAL is looked for in the backup's pg_wal, then in \
            --wal-archive (a pgkeep receive-wal directory; compressed segments are read too).

            Every problem is reported, not only the first. Exit status 0: verified; 1: problems \
            found; 2: the backup cannot be checked (no manifest, or a damaged one).

            Tar backups (base.tar, <oid>.tar, pg_wal.tar; gzip, lz4 or zstd compressed) are read \
            in one pass each, without unpacking; only pg_wal.tar is unpacked, to a scratch \
            directory, for the WAL check.

            Examples:
              pgkeep verify /backups/db1/2026-11-25
              pgkeep verify /backups/db1/2026-11-25 --wal-archive /archive/db1 --json
            """)

    @Argument(help: ArgumentHelp("The backup directory.", valueName: "backup"))
    var backup: String?

    @Option(name: .long, help: ArgumentHelp("Verify a repository's backups instead (every one, or --backup ID).", valueName: "directory"))
    var repo: String?

    @Option(name: .customLong("backup"), help: ArgumentHelp("With --repo: only this backup.", valueName: "id"))
    var backupID: String?

    @Option(name: .customLong("wal-archive"), help: ArgumentHelp(
        "Also look for WAL in this archive (e.g. one pgkeep receive-wal writes).", valueName: "directory"))
    var walArchive: String?

    @Option(name: [.customShort("w"), .customLong("wal-directory")], help: ArgumentHelp(
        "Read the WAL from this directory instead of the backup's pg_wal.", valueName: "directory"))
    var walDirectory: String?

    @Flag(name: [.customShort("n"), .customLong("no-parse-wal"), .customLong("no-wal")], help: "Do not check WAL (only the files the manifest lists).")
    var noWAL = false

    @Flag(name: [.customShort("s"), .customLong("skip-checksums")], help: "Compare file sizes only, not checksums.")
    var skipChecksums = false

    @Option(name: [.customShort("i"), .long], help: ArgumentHelp(
        "Leave out this path, relative to the backup (a directory covers what is under it; repeatable).", valueName: "path"))
    var ignore: [String] = []

    @Flag(name: [.customShort("e"), .customLong("exit-on-error")], help: "Stop at the first problem.")
    var exitOnError = false

    @Option(name: [.customShort("m"), .customLong("manifest-path")], help: ArgumentHelp(
        "Read the manifest from this file instead of the backup's backup_manifest.", valueName: "path"))
    var manifestPath: String?

    @Option(name: [.customShort("F"), .long], help: ArgumentHelp(
        "The backup's format, plain or tar (found out by itself when not given).", valueName: "p|t"))
    var format: BackupConfiguration.Format?

    @Flag(name: [.customShort("P"), .long], help: "Show progress.")
    var progress = false

    @Flag(name: .long, help: "Print the report as JSON on stdout.")
    var json = false

    @Flag(name: [.customShort("q"), .long], help: "Print nothing when the backup verifies.")
    var quiet = false

    func validate() throws {
        if quiet && progress { throw ValidationError("cannot specify both --progress and --quiet") }
        if (backup == nil) == (repo == nil) { throw ValidationError("give a backup directory, or --repo DIR") }
        if backupID != nil && repo == nil { throw ValidationError("--backup ID goes with --repo") }
    }

    func run() throws {
        if let repo {
            try verifyRepository(repo)
            return
        }
        let backup = backup!
        var options = BackupVerifier.Options()
        options.walArchive = walArchive.map(absolute)
        options.walDirectory = walDirectory.map(absolute)
        options.checkWAL = !noWAL
        options.skipChecksums = skipChecksums
        options.ignore = ignore
        options.exitOnError = exitOnError
        options.manifestPath = manifestPath.map(absolute)
        if progress {
            let renderer = ProgressRenderer()
            options.progress = { renderer.render($0) }
        }
        if let format {
            let isTar = FileManager.default.fileExists(atPath: absolute(backup) + "/base.tar")
                || ((try? FileManager.default.contentsOfDirectory(atPath: absolute(backup))) ?? []).contains { $0.hasPrefix("base.tar.") }
            if (format == .tar) != isTar {
                printError("pgkeep: error: \(backup) is not a \(format.rawValue)-format backup\n")
                throw ExitCode(2)
            }
        }
        let verifier = BackupVerifier(directory: absolute(backup), options: options)
        let report: BackupVerifier.Report
        do {
            report = try verifier.run()
        } catch {
            printError("pgkeep: error: \(error)\n")
            throw ExitCode(2)
        }
        if json {
            struct Output: Encodable { let report: BackupVerifier.Report; let ok: Bool }
            try printJSON(Output(report: report, ok: report.ok))
        } else {
            for problem in report.problems { printError("pgkeep: error: \(problem)\n") }
            if report.ok && !quiet {
                print("backup successfully verified: \(report.filesChecked) files (\(report.bytesChecked / 1_048_576) MB), \(report.walRecords) WAL records in \(report.walSegments) segment(s)")
            }
        }
        if !report.ok { throw ExitCode(1) }
    }

    private func verifyRepository(_ repo: String) throws {
        let report: RepositoryMaintenance.VerifyReport
        do {
            report = try RepositoryMaintenance.verify(absolute(repo), backup: backupID)
        } catch {
            writeStandardError("pgkeep: error: \(error)\n")
            throw ExitCode(2)
        }
        if json {
            struct Output: Encodable { let report: RepositoryMaintenance.VerifyReport; let ok: Bool }
            try printJSON(Output(report: report, ok: report.ok))
        } else {
            for problem in report.problems { writeStandardError("pgkeep: error: \(problem)\n") }
            if report.ok && !quiet {
                print("repository verified: \(report.backups.count) backup(s), \(report.filesChecked) files (\(report.bytesChecked / 1_048_576) MB), \(report.walRecords) WAL records")
            }
        }
        if !report.ok { throw ExitCode(1) }
    }
}
