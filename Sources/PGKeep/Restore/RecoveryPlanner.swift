#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Logging
import Manifest
import PGWire
import Sinks
import WAL

/// Point-in-time recovery settings for a restored data directory, and the checks that refuse a
/// target recovery could not reach — shared by `restore` of a backup directory and of a repository.
public struct RecoveryPlanner {
    public var target: RecoveryTarget
    public var walArchive: String?
    /// The pgkeep binary restore_command runs (absolute).
    public var executable: String
    /// WAL of the backup itself, read after the archive (a plain backup's pg_wal).
    public var backupWALDirectory: String?
    /// The backup's backup_label (its START TIME bounds a time target).
    public var backupLabel: String?
    public var logger: Logger

    public init(target: RecoveryTarget, walArchive: String?, executable: String, backupWALDirectory: String?, backupLabel: String?,
                logger: Logger) {
        self.target = target
        self.walArchive = walArchive
        self.executable = executable
        self.backupWALDirectory = backupWALDirectory
        self.backupLabel = backupLabel
        self.logger = logger
    }

    /// A target the WAL cannot reach is refused now, not after a long restore and replay.
    /// Refuses a target recovery from this backup (its WAL ranges) and the archive cannot reach.
    public func check(walRanges: [BackupManifest.WALRange]) throws {
        guard let kind = target.kind else { return }
        guard let backupEnd = walRanges.map(\.end).max() else { return }
        if case .lsn(let lsn) = kind {
            guard lsn >= backupEnd else {
                throw PGKeepError.invalidConfiguration("--target-lsn \(lsn) is before the backup's end (\(backupEnd)): recovery from this backup cannot stop there; use an older backup")
            }
            if lsn > backupEnd {
                guard let archive = walArchive else {
                    throw PGKeepError.invalidConfiguration("--target-lsn \(lsn) is past the backup's end (\(backupEnd)): give the WAL archive with --wal-archive")
                }
                let reach = try archiveEnd(archive)
                guard let reach, lsn <= reach else {
                    throw PGKeepError.invalidConfiguration("--target-lsn \(lsn) is past the WAL the archive holds (it ends at \(reach.map(\.description) ?? "nothing")); recovery could not reach it")
                }
            }
        } else if walArchive == nil, kind != .immediate {
            throw PGKeepError.invalidConfiguration("a recovery target past the backup needs the WAL archive: add --wal-archive DIR")
        } else if let archive = walArchive, kind != .immediate {
            try checkTargetInArchive(kind, walRanges: walRanges, archive: archive)
        }
    }

    /// A target time before the backup started or after the archive's last transaction, an xid
    /// whose commit, or a restore point whose name, is not in the WAL after the backup: recovery
    /// could not reach them, so they are refused now. Reads the WAL from the backup's start to the
    /// archive's end (which also proves it continuous). Skipped, with a note, for a time this
    /// cannot parse (PostgreSQL will) or an archive that changes timeline.
    private func checkTargetInArchive(_ kind: RecoveryTarget.Kind, walRanges: [BackupManifest.WALRange], archive: String) throws {
        var wanted: Date?
        if case .time(let text) = kind {
            guard let time = PostgresTime.parse(text) else {
                logger.info("cannot read --target-time '\(text)' here; PostgreSQL will check it")
                return
            }
            wanted = time
            if let label = try backupLabel.flatMap({ try readWholeFile($0) }).map({ String(decoding: $0, as: UTF8.self) }),
               let line = label.split(separator: "\n").first(where: { $0.hasPrefix("START TIME: ") }),
               let started = PostgresTime.parse(String(line.dropFirst("START TIME: ".count))), time < started {
                throw PGKeepError.invalidConfiguration("--target-time \(text) is before the backup started (\(line.dropFirst("START TIME: ".count))); use an older backup")
            }
        }
        guard let range = walRanges.first, walRanges.count == 1,
              !(try FileManager.default.contentsOfDirectory(atPath: archive)).contains(where: { $0.hasSuffix(".history") }) else {
            logger.info("the archive changes timeline; the recovery target is left for PostgreSQL to check")
            return
        }
        // The archive first: the backup's own last segment is only valid up to the backup's end
        // (zeros after it), while the archive's copy of it is whole.
        let source = WALSegmentSource(directories: [archive] + (backupWALDirectory.map { [$0] } ?? []))
        guard let size = try source.segmentSize() else { return }
        var checker = WALRecordChecker(segmentSize: size, source: source)
        var latest: Int64?, found = false
        checker.onTargetEvent = { position, event in
            guard position >= range.end else { return }
            switch (event, kind) {
            case (.transactionEnd(_, let time), .time): latest = max(latest ?? time, time)
            case (.transactionEnd(let xid, _), .xid(let wantedXID)): if String(xid) == wantedXID { found = true }
            case (.restorePoint(let name), .name(let wantedName)): if name == wantedName { found = true }
            default: break
            }
        }
        do {
            _ = try checker.check(timeline: range.timeline, from: range.start, to: LSN(UInt64.max))
        } catch let failure as WALRecordChecker.Failure where failure.isMissingSegment {
            // The end of the archive.
        } catch {
            throw PGKeepError.verification("the WAL archive cannot be read through to its end: \(error)")
        }
        switch kind {
        case .time(let text):
            guard let latest, let wanted, wanted.postgresMicroseconds <= latest else {
                let last = latest.map { PostgresTime.describe($0) } ?? "none"
                throw PGKeepError.invalidConfiguration("--target-time \(text) is after the last transaction in the WAL archive (\(last)); recovery could not reach it")
            }
        case .xid(let xid) where !found:
            throw PGKeepError.invalidConfiguration("--target-xid \(xid): no commit or abort of that transaction in the WAL after the backup; recovery could not reach it")
        case .name(let name) where !found:
            throw PGKeepError.invalidConfiguration("--target-name \(name): no such restore point in the WAL after the backup; recovery could not reach it")
        default:
            break
        }
    }

    /// The end of the newest complete segment in the archive.
    private func archiveEnd(_ archive: String) throws -> LSN? {
        let source = WALSegmentSource(directories: [archive])
        guard let size = try source.segmentSize() else { return nil }
        let segments = try WALArchiveDirectory(path: archive).completeSegments(segmentSize: size)
        guard let last = segments.last, case .segment(_, let number, _, _)? = WALFileName(last, segmentSize: size) else { return nil }
        return LSN((number + 1) * size.bytes)
    }

    /// recovery.signal and, in postgresql.auto.conf, restore_command and the targets.
    public func writeSettings(into root: String) throws -> [String] {
        guard walArchive != nil || target.kind != nil else { return [] }
        let command = walArchive.map { "\(Self.shellQuote(executable)) wal-fetch %f %p --wal-archive \(Self.shellQuote($0))" }
        let lines = target.settings(restoreCommand: command)
        let path = root + "/postgresql.auto.conf"
        let existing = (try readWholeFile(path)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let text = existing + (existing.isEmpty || existing.hasSuffix("\n") ? "" : "\n")
            + "# recovery settings written by pgkeep restore\n" + lines.joined(separator: "\n") + "\n"
        try Durability.writeFileAtomically(Array(text.utf8), named: "postgresql.auto.conf", in: root, sync: false)
        try Durability.writeFileAtomically([], named: "recovery.signal", in: root, sync: false)
        return lines
    }

    static func shellQuote(_ text: String) -> String {
        text.allSatisfy { $0.isLetter || $0.isNumber || "/._-=".contains($0) } ? text : "'" + text.replacing("'", with: "'\\''") + "'"
    }
}
