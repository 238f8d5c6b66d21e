import Dispatch
import Glibc
import CPGKeepShims
import Synchronization

/// Files made ahead of need, without names, on a thread of their own: `DirectoryExtractor` names
/// one (`link`) when a member arrives, instead of creating the file on the thread that receives
/// the stream.
///
/// Why: creating a file is mostly allocating its inode, and that is slow on some file systems —
/// on the standard machine's ext4 (no journal) 0.5–0.6 ms, where naming an anonymous file
/// (O_TMPFILE) costs 0.025 ms: without a journal, ext4 passes over every free inode deleted in
/// the last minute (six while its inode-table block is unwritten) with a buffer-cache lookup each
/// (`recently_deleted`), so a create costs more the more was deleted near it lately (0.02 ms
/// where nothing was). A plain backup creates ~1,000 files: 0.36–0.48 s of the receiving
/// thread's time (perf trace), while the server waited. Here that time is spent on another
/// processor, hundreds of files ahead.
///
/// Files are made with one mode (`0600`, or `0640` for a cluster with group access; the umask
/// applies as it does to any file created) in one directory and may be named in any directory of
/// the same file system. Where the file system has no O_TMPFILE, or naming fails for another
/// reason than a taken name (another file system: EXDEV; no /proc), the caller creates the file
/// itself. An anonymous file nobody named disappears when it is closed (`stop`, or the process's
/// end).
///
/// How far ahead: 512 files (`depth(openFileLimit:open:)`: fewer where the process has few
/// descriptors left, none below 32). Where creating is taxed, right after a mass deletion, the
/// reserve's thread makes files no faster than a few thousand a second, while a cluster's small
/// files arrive faster than that in bursts: a deep reserve, filled while large files stream, covers the bursts. Plain backups
/// of the PostgreSQL 15 bench cluster right after deleting the previous one (985 files; eight
/// each, alternated, same binary): 32 ahead made 589–707 of them ahead (median 600–615) in
/// 1.48–2.17 s (median 1.54–1.61); 256, 719–774 (732) in 1.46 s, 0.92× the time pair by pair;
/// 512, 851–966 (862) in 1.34 s, 0.87×; 1,024, 898, 0.90×. Growing from 32 by one for each file
/// named made 720 ahead, 0.96×: the bursts come first. Every cluster has ~1,000 files (initdb
/// makes them), so the main archive names them all; a small tablespace leaves some unnamed,
/// made on the reserve's thread and closed at `stop` (512: ~25 ms of that thread's time where
/// creating is taxed, ~2 ms to close).
final class InodeReserve: @unchecked Sendable {
    // @unchecked: `state` is behind its mutex; `room` counts the places free in it.
    /// What the files are made with (before the umask).
    let mode: mode_t
    private let directory: FileDescriptor
    /// Counted up from 0 (libdispatch traps when a semaphore is freed below its starting value).
    private let room = DispatchSemaphore(value: 0)
    private struct State {
        var ready: [Int32] = []
        var stopped = false
    }
    private let state = Mutex(State())

    static let most = 512
    /// Below this a reserve is not worth the descriptors it would hold.
    static let fewest = 32
    /// Descriptors left to the rest of the process beyond the half of what remains.
    static let margin = 128

    /// How many files this reserve holds made ahead.
    let depth: Int

    /// How many files a reserve holds made ahead: `most`, or half of the descriptors the process
    /// has left (its soft limit less those open) less `margin` where that is lower — 443 in a
    /// process with ten open under the usual limit of 1,024, and a second reserve made meanwhile
    /// takes half of what the first left. nil below `fewest`: a reserve would take descriptors the rest
    /// of the process may need, and the files are created as they arrive instead.
    static func depth(openFileLimit: Int, open: Int) -> Int? {
        let share = openFileLimit >= Int.max / 2 ? most : (openFileLimit - open - margin) / 2
        let depth = min(most, share)
        return depth >= fewest ? depth : nil
    }

    /// Starts making files of `mode` in `directory` (kept open, a duplicate of the caller's
    /// descriptor). nil when the file system cannot make anonymous files, the process has too few
    /// descriptors left (`depth(openFileLimit:open:)`) or no thread can be started.
    init?(in directory: FileDescriptor, mode: mode_t = 0o600) {
        var limit = rlimit()
        let openFiles = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Int(clamping: limit.rlim_cur) : Int.max
        guard let depth = Self.depth(openFileLimit: openFiles, open: Self.descriptorsOpen()) else { return nil }
        let fd = dup(directory.raw)
        guard fd >= 0 else { return nil }
        self.depth = depth
        self.mode = mode
        self.directory = FileDescriptor(raw: fd, path: directory.path)
        for _ in 0..<depth { room.signal() }
        // One made here tells whether the file system can; it is the first of the reserve.
        let first = pgkeep_open_tmpfile(fd, mode)
        guard first >= 0 else { return nil }
        room.wait()
        state.withLock { $0.ready.append(first) }
        do {
            try OSThread.detach(name: "pgkeep-inodes") { [self] in run() }
        } catch {
            Glibc.close(first)
            return nil
        }
    }

    /// What naming a file made ahead came to.
    enum Naming: Equatable {
        /// The file, now `name` in `parent`, open for writing (the caller owns the descriptor).
        case named(Int32)
        /// The name is taken: what creating it would have failed with (EEXIST).
        case taken
        /// None ready, or naming failed otherwise (EXDEV, no /proc): the caller creates the file.
        case unavailable
    }

    /// Names a file made ahead `name` in `parent`.
    func link(_ name: UnsafePointer<CChar>, in parent: Int32) -> Naming {
        guard let fd = state.withLock({ $0.ready.isEmpty ? nil : $0.ready.removeFirst() }) else { return .unavailable }
        room.signal()
        guard pgkeep_link_tmpfile(fd, parent, name) == 0 else {
            let taken = errno == EEXIST
            Glibc.close(fd)
            return taken ? .taken : .unavailable
        }
        return .named(fd)
    }

    /// How many descriptors the process has open (0 where /proc is missing: then naming a file
    /// made ahead fails anyway, and the caller creates it).
    static func descriptorsOpen() -> Int {
        guard let listing = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(listing) }
        var entries = 0
        while readdir(listing) != nil { entries += 1 }
        return max(0, entries - 3)  // ".", "..", and the listing's own descriptor
    }

    /// Files made and not yet named.
    var ready: Int { state.withLock { $0.ready.count } }

    /// Ends the thread; files made and not named are closed (and so gone).
    func stop() {
        let left = state.withLock { state -> [Int32] in
            state.stopped = true
            defer { state.ready.removeAll() }
            return state.ready
        }
        for fd in left { Glibc.close(fd) }
        room.signal()
    }

    private func run() {
        while true {
            room.wait()
            if state.withLock({ $0.stopped }) { return }
            let fd = pgkeep_open_tmpfile(directory.raw, mode)
            // A failure (no space for inodes, too many open files): the caller creates its own.
            if fd < 0 { return }
            let kept = state.withLock { state -> Bool in
                if state.stopped { return false }
                state.ready.append(fd)
                return true
            }
            if !kept {
                Glibc.close(fd)
                return
            }
        }
    }
}
