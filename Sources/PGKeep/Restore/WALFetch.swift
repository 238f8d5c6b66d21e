#if canImport(Glibc)
import Glibc
#endif
import Sinks
import WAL

/// `pgkeep wal-fetch %f %p`: PostgreSQL's restore_command for a receive-wal archive. Copies the
/// segment or history file `%f` to `%p`, decompressing `.gz`/`.lz4`/`.zst`. A file the archive
/// does not have is "not found" (exit 1), which recovery expects at the end of the archive; a
/// `.partial` is served only when asked, because recovery would otherwise replay WAL that may
/// not belong to the timeline it follows.
public enum WALFetch {
    public enum Outcome: Equatable { case fetched(from: String), notFound }

    public static func fetch(_ name: String, to destination: String, archive: String, allowPartial: Bool = false) throws -> Outcome {
        guard !name.contains("/"), !name.isEmpty else { throw BackupError.invalidConfiguration("wal-fetch: '\(name)' is not a WAL file name") }
        let source = WALSegmentSource(directories: [archive])
        var found = try source.segment(named: name)
        if found == nil, allowPartial, let bytes = try readWholeFile(archive + "/" + name + ".partial") {
            found = (bytes, archive + "/" + name + ".partial")
        }
        guard let (bytes, path) = found else { return .notFound }
        // Written next to the destination and renamed, so recovery never reads a torn file.
        let slash = destination.lastIndex(of: "/")
        let directory = slash.map { String(destination[..<$0]) } ?? "."
        let finalName = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
        try Durability.writeFileAtomically(bytes, named: finalName, in: directory.isEmpty ? "/" : directory, sync: false)
        return .fetched(from: path)
    }
}
