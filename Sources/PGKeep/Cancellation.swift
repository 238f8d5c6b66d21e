#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// SIGINT/SIGTERM during a backup: the first one only sets a flag (async-signal-safe); the
/// receive loops poll it (at least twice a second) and stop, so the job can remove what it wrote.
/// A second signal exits at once: the person means it, and the directory, without
/// backup_manifest, is still marked incomplete.
///
/// Installed by the job once it is about to write (before that, the default action is right:
/// nothing needs cleaning up), and only when the configuration asks for it.
public enum Cancellation {
    private static let requested = Atomic<Bool>(false)

    public static var isRequested: Bool { requested.load(ordering: .relaxed) }

    static func installSignalHandlers() {
        for signal in [SIGINT, SIGTERM] {
            Glibc.signal(signal) { number in
                if Cancellation.requested.exchange(true, ordering: .relaxed) { _exit(128 + number) }
            }
        }
    }
}
