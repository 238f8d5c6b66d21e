import FoundationEssentials
import PGWire
import Sinks

/// The backups a repository holds, oldest first (ids sort by time).
public struct Catalog: Sendable {
    public let records: [BackupRecord]

    public init(records: [BackupRecord]) {
        self.records = records.sorted { $0.id < $1.id }
    }

    /// Reads every committed backup (a directory with a backup.json); partial ones are not listed.
    public static func load(_ layout: RepositoryLayout) throws -> Catalog {
        let names = (try? directoryEntries(layout.backupsDirectory)) ?? []
        var records: [BackupRecord] = []
        for name in names where !name.hasPrefix(".") {
            let path = layout.backupDirectory(name) + "/" + RepositoryLayout.recordName
            guard let bytes = try readWholeFile(path) else { continue }
            do {
                records.append(try JSONDecoder().decode(BackupRecord.self, from: Data(bytes)))
            } catch {
                throw RepositoryError("\(path) cannot be read: \(error)")
            }
        }
        return Catalog(records: records)
    }

    public var newestFull: BackupRecord? { records.last { $0.level == .full } }
    public var newest: BackupRecord? { records.last }

    public func record(_ id: String) -> BackupRecord? { records.first { $0.id == id } }

    /// The backups a restore can start from (fulls and differentials), oldest first.
    public var restorable: [BackupRecord] { records.filter(\.hasData) }

    /// The full a record's data rests on (itself for a full).
    public func full(of record: BackupRecord) -> BackupRecord? {
        record.level == .full ? record : record.parent.flatMap(self.record)
    }

    /// The newest restorable backup that is consistent at or before `lsn`, or `time`
    /// (PostgreSQL's timestamp text is compared by the caller's parsed value).
    public func newestRestorable(consistentBy isEarlyEnough: (BackupRecord) -> Bool) -> BackupRecord? {
        restorable.last(where: isEarlyEnough)
    }
}

public struct RepositoryError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
