#if canImport(Glibc)
import Glibc
#endif

/// How many threads CPU-bound work may use: compression workers, checksumming a backup's files.
public enum Processors {
    /// The online processors, at least 1 and at most 16.
    public static var online: Int { Int(min(max(sysconf(Int32(_SC_NPROCESSORS_ONLN)), 1), 16)) }
}
