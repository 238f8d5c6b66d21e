import PGWire

/// A timeline history file's content (`TIMELINE_HISTORY` returns it verbatim): one line per
/// ancestor timeline, "parentTLI<TAB>switchpoint<TAB>reason", oldest first. Timeline `current`
/// is the one the file belongs to; it has no end.
public struct TimelineHistory: Equatable, Sendable {
    public struct Entry: Equatable, Sendable {
        public var timeline: TimelineID
        /// The first position that belongs to the next timeline.
        public var switchpoint: LSN
    }

    public let current: TimelineID
    public let ancestors: [Entry]

    public init(current: TimelineID, ancestors: [Entry]) {
        self.current = current
        self.ancestors = ancestors
    }

    /// Parses the file text as PostgreSQL's readTimeLineHistory does: blank lines and comments
    /// skipped, other lines must hold a timeline and a position.
    public init(current: TimelineID, content: String) throws(WALStreamError) {
        var entries: [Entry] = []
        for line in content.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let fields = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let tli = TimelineID(fields[0]), let switchpoint = LSN(String(fields[1])) else {
                throw WALStreamError("timeline history of timeline \(current) has an invalid line: \(line)")
            }
            if let last = entries.last, tli <= last.timeline || switchpoint < last.switchpoint {
                throw WALStreamError("timeline history of timeline \(current) is not in order at: \(line)")
            }
            entries.append(Entry(timeline: tli, switchpoint: switchpoint))
        }
        if let last = entries.last, last.timeline >= current {
            throw WALStreamError("timeline history of timeline \(current) names timeline \(last.timeline) as an ancestor")
        }
        self.init(current: current, ancestors: entries)
    }

    /// The timeline WAL at `position` belongs to on this history: a switchpoint itself belongs
    /// to the newer timeline (restarting the old one exactly there streams nothing).
    public func timeline(containing position: LSN) -> TimelineID {
        ancestors.first(where: { position < $0.switchpoint })?.timeline ?? current
    }

    /// True when `timeline` is this one or one of its ancestors.
    public func includes(_ timeline: TimelineID) -> Bool {
        timeline == current || ancestors.contains { $0.timeline == timeline }
    }

    /// Where `timeline` ends on this history (nil: it is the current one, or not in it).
    public func end(of timeline: TimelineID) -> LSN? {
        ancestors.first(where: { $0.timeline == timeline })?.switchpoint
    }
}
