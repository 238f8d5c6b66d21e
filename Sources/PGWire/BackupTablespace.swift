/// One row of BASE_BACKUP's tablespace list. The main data directory is the row with no oid and
/// no location.
public struct BackupTablespace: Hashable, Sendable {
    public var oid: UInt32?
    public var location: String?
    /// Estimated size in kB (only when PROGRESS was requested).
    public var sizeKB: UInt64?

    public init(oid: UInt32?, location: String?, sizeKB: UInt64?) {
        self.oid = oid
        self.location = location
        self.sizeKB = sizeKB
    }

    public var isMainDirectory: Bool { oid == nil }

    /// The archive name this tablespace's tar has when the server does not name it (14).
    public var archiveName: String { oid.map { "\($0).tar" } ?? "base.tar" }

    /// Decodes a row (spcoid, spclocation, size), all text, nulls for the main directory.
    public init(row: [String?]) throws(WireError) {
        guard row.count >= 2 else { throw .unexpectedResult("tablespace row with \(row.count) columns") }
        var oid: UInt32?
        if let text = row[0] {
            guard let value = UInt32(text) else { throw .unexpectedResult("tablespace oid '\(text)'") }
            oid = value
        }
        let location = row[1].flatMap { $0.isEmpty ? nil : $0 }
        guard (oid == nil) == (location == nil) else {
            throw .unexpectedResult("tablespace row with oid \(row[0] ?? "null") and location \(row[1] ?? "null")")
        }
        let size = row.count > 2 ? row[2].flatMap { UInt64($0) } : nil
        self.init(oid: oid, location: location, sizeKB: size)
    }
}
