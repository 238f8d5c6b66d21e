/// The one row IDENTIFY_SYSTEM answers with.
public struct IdentifySystem: Hashable, Sendable {
    public var systemIdentifier: String
    public var timeline: TimelineID
    public var walPosition: LSN
    public var databaseName: String?

    public init(systemIdentifier: String, timeline: TimelineID, walPosition: LSN, databaseName: String?) {
        self.systemIdentifier = systemIdentifier
        self.timeline = timeline
        self.walPosition = walPosition
        self.databaseName = databaseName
    }

    /// Decodes the row (columns: systemid, timeline, xlogpos, dbname), all as text.
    public init(row: [String?]) throws(WireError) {
        guard row.count >= 3, let id = row[0], let tliText = row[1], let posText = row[2] else {
            throw WireError.unexpectedResult("IDENTIFY_SYSTEM returned \(row.count) columns, expected 4")
        }
        guard let tli = TimelineID(tliText) else { throw WireError.unexpectedResult("IDENTIFY_SYSTEM timeline '\(tliText)'") }
        guard let pos = LSN(posText) else { throw WireError.unexpectedResult("IDENTIFY_SYSTEM xlogpos '\(posText)'") }
        self.init(systemIdentifier: id, timeline: tli, walPosition: pos, databaseName: row.count > 3 ? row[3] : nil)
    }
}
