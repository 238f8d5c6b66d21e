import PGWire

/// What `expire` removes, and why: pure, given the catalog and the rule.
///
/// Never removed: a backup another kept backup depends on (a differential's full), and the WAL a
/// kept backup needs to reach every point of its window — from the start of the oldest kept
/// full on.
public struct ExpirePlan: Equatable, Sendable {
    public enum Rule: Equatable, Sendable {
        /// Keep the newest N fulls and everything after the oldest of them.
        case keepFull(Int)
        /// Keep every point in time of the last D days: the backups finished in them, and the
        /// newest full before them (the window's first points are restored from it).
        case keepDays(Int)
    }

    public struct Removal: Equatable, Sendable {
        public var id: String
        public var reason: String
    }

    public var removals: [Removal]
    public var kept: [String]
    /// WAL before this position is no longer needed (nil: keep all).
    public var walBefore: LSN?

    /// `finishedAt(record)` gives a record's finish time in seconds (for keepDays); `now` too.
    public static func make(_ catalog: Catalog, rule: Rule, now: Double, finishedAt: (BackupRecord) -> Double) -> ExpirePlan {
        let records = catalog.records
        let fulls = records.filter { $0.level == .full }
        var oldestKeptFull: BackupRecord?
        var reasonFor: (BackupRecord) -> String
        switch rule {
        case .keepFull(let count):
            oldestKeptFull = fulls.suffix(max(count, 1)).first
            reasonFor = { _ in "older than the \(count) newest full backup\(count == 1 ? "" : "s")" }
        case .keepDays(let days):
            let cutoff = now - Double(days) * 86_400
            // The newest full finished at or before the cutoff starts the window; if every full is
            // newer, the oldest full does.
            oldestKeptFull = fulls.last { finishedAt($0) <= cutoff } ?? fulls.first
            reasonFor = { _ in "older than \(days) day\(days == 1 ? "" : "s") and not needed by a newer backup" }
        }
        guard let first = oldestKeptFull else { return ExpirePlan(removals: [], kept: records.map(\.id), walBefore: nil) }
        var removals: [Removal] = []
        var kept: [String] = []
        for record in records {
            if record.id < first.id {
                removals.append(Removal(id: record.id, reason: reasonFor(record)))
            } else {
                kept.append(record.id)
            }
        }
        // A kept differential's full is kept too (it is at or after `first` by construction, as a
        // differential's full is the newest full before it).
        let walStart = LSN(first.startLSN).map { $0 } ?? nil
        return ExpirePlan(removals: removals, kept: kept, walBefore: walStart)
    }
}
