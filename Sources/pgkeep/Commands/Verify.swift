import ArgumentParser
import Foundation
import PGKeep

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
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
    var backup: String

    @Option(name: .customLong("wal-archive"), help: ArgumentHelp(
        "Also look for WAL in this archive (e.g. one pgkeep receive-wal writes).", valueName: "directory"))
    var walArchive: String?

    @Flag(name: .customLong("no-wal"), help: "Do not check WAL (only the files the manifest lists).")
    var noWAL = false

    @Flag(name: .long, help: "Print the report as JSON on stdout.")
    var json = false

    @Flag(name: [.customShort("q"), .long], help: "Print nothing when the backup verifies.")
    var quiet = false

    func run() throws {
        let verifier = BackupVerifier(directory: absolute(backup), walArchive: walArchive.map(absolute), checkWAL: !noWAL)
        let report: BackupVerifier.Report
        do {
            report = try verifier.run()
        } catch {
            FileHandle.standardError.write(Data("pgkeep: error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            struct Output: Encodable { let report: BackupVerifier.Report; let ok: Bool }
            print(String(decoding: try encoder.encode(Output(report: report, ok: report.ok)), as: UTF8.self))
        } else {
            for problem in report.problems { FileHandle.standardError.write(Data("pgkeep: error: \(problem)\n".utf8)) }
            if report.ok && !quiet {
                print("backup successfully verified: \(report.filesChecked) files (\(report.bytesChecked / 1_048_576) MB), \(report.walRecords) WAL records in \(report.walSegments) segment(s)")
            }
        }
        if !report.ok { throw ExitCode(1) }
    }
}
