import ArgumentParser
import FoundationEssentials
import PGWire
import PGKeep
import Repository

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List a repository's backups and the point-in-time window it can restore to.",
        discussion: """
            With --json: an array with one object per backup (id, level, parent, start_lsn, \
            end_lsn, timeline, started_at, finished_at, bytes_received, bytes_stored, wal_start, \
            wal_end, and more), oldest first.
            """)

    @Option(name: .long, help: ArgumentHelp("The repository directory.", valueName: "directory"))
    var repo: String

    @Flag(name: .long, help: "Print a JSON array on stdout.")
    var json = false

    func run() throws {
        let layout = RepositoryLayout(root: absolute(repo))
        let catalog: Catalog
        let window: RepositoryMaintenance.Window?
        do {
            _ = try Repository.open(layout)
            catalog = try Catalog.load(layout)
            window = try RepositoryMaintenance.window(layout, catalog: catalog)
        } catch {
            let mapped = PGKeepError.mapping(error)
            writeStandardError("pgkeep: error: \(mapped)\n")
            throw ExitCode(mapped.exitCode)
        }
        if json {
            try printJSON(catalog.records)
            return
        }
        guard !catalog.records.isEmpty else {
            print("no backups in \(layout.root) yet: pgkeep backup --repo \(repo) --level full")
            return
        }
        let header = ["ID", "LEVEL", "BASED ON", "START LSN", "END LSN", "TLI", "FINISHED (UTC)", "RECEIVED", "STORED"]
        var rows = [header]
        for record in catalog.records {
            rows.append([record.id, record.level.rawValue + (record.fallbackReason != nil && record.method != .file ? "*" : ""),
                         record.parent ?? "-", record.startLSN, record.endLSN, String(record.timeline),
                         record.finishedAt.replacing("T", with: " ").replacing("Z", with: ""),
                         ByteCount.describe(record.bytesReceived), ByteCount.describe(record.bytesStored)])
        }
        let widths = (0..<header.count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            print(row.enumerated().map { $0.element.padded(to: widths[$0.offset]) }.joined(separator: "  "))
        }
        if catalog.records.contains(where: { $0.fallbackReason != nil && $0.method != .file }) {
            print("* taken as a full backup instead of the level asked for (pgkeep list --json says why)")
        }
        if let window {
            print("\nrestorable to any point from \(window.from) (\(window.fromLSN)) to the end of the archived WAL (\(window.toLSN ?? "none archived yet"))")
        } else {
            print("\nno full backup yet: nothing can be restored")
        }
    }
}
