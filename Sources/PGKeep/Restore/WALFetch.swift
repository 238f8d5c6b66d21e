#if canImport(Glibc)
import Glibc
#endif
import Sinks
import WAL

/// `pgkeep wal-fetch %f %p`: PostgreSQL's restore_command for a receive-wal archive. Copies the
/// segment or history file `%f` to `%p`, decompressing `.gz`/`.lz4`/`.zst`, streaming in fixed
/// chunks (a 1 GiB segment costs no more memory than a 16 MiB one). A file the archive does not
/// have is "not found" (exit 1), which recovery expects at the end of the archive; a `.partial` is
/// served only when asked, because recovery would otherwise replay WAL that may not belong to the
/// timeline it follows.
public enum WALFetch {
    public enum Outcome: Equatable { case fetched(from: String), notFound }

    public static func fetch(_ name: String, to destination: String, archive: String, allowPartial: Bool = false) throws -> Outcome {
        guard !name.contains("/"), !name.isEmpty else { throw PGKeepError.invalidConfiguration("wal-fetch: '\(name)' is not a WAL file name") }
        let source = WALSegmentSource(directories: [archive])
        var found = source.locate(name)
        if found == nil, allowPartial, access(archive + "/" + name + ".partial", F_OK) == 0 {
            found = WALSegmentSource.Found(path: archive + "/" + name + ".partial", compression: nil)
        }
        guard let found else { return .notFound }
        // Written next to the destination and renamed, so recovery never reads a torn file.
        let slash = destination.lastIndex(of: "/")
        let directory = slash.map { String(destination[..<$0]) } ?? "."
        let finalName = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
        let parent = directory.isEmpty ? "/" : directory
        let temporary = finalName + ".pgkeep-tmp"
        unlink(parent + "/" + temporary)
        do {
            let sink = try FileSink(path: parent + "/" + temporary, syncOnFinish: false)
            try WALSegmentSource.stream(found) { try sink.consume($0) }
            try sink.finish()
            try Durability.durableReplace(in: parent, from: temporary, to: finalName, sync: false)
        } catch {
            unlink(parent + "/" + temporary)
            throw error
        }
        return .fetched(from: found.path)
    }
}
