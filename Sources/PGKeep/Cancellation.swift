#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// SIGINT/SIGTERM during a backup: the handler only sets a flag (async-signal-safe); the receive
/// loops poll it between messages and stop, so the job can remove what it wrote.
public enum Cancellation {
    private static let requested = Atomic<Bool>(false)

    public static var isRequested: Bool { requested.load(ordering: .relaxed) }

    public static func installSignalHandlers() {
        for signal in [SIGINT, SIGTERM] {
            Glibc.signal(signal) { _ in Cancellation.requested.store(true, ordering: .relaxed) }
        }
    }
}
