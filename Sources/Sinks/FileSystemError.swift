#if canImport(Glibc)
import Glibc
#endif

/// A system call on the target failed: which, on what, and errno's words.
public struct FileSystemError: Error, Equatable, Sendable, CustomStringConvertible {
    public let operation: String
    public let path: String
    public let errno: Int32

    public init(_ operation: String, _ path: String, errno: Int32 = Glibc.errno) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    public var isNoSpace: Bool { errno == ENOSPC || errno == EDQUOT }

    public var description: String {
        let reason = String(cString: strerror(errno))
        let hint = isNoSpace ? " (the target file system is full)" : ""
        return "could not \(operation) \"\(path)\": \(reason)\(hint)"
    }
}

/// Retries a system call interrupted by a signal; throws FileSystemError on failure.
@discardableResult
func retrying(_ operation: String, _ path: String, _ call: () -> Int) throws(FileSystemError) -> Int {
    while true {
        let result = call()
        if result >= 0 { return result }
        if errno == EINTR { continue }
        throw FileSystemError(operation, path)
    }
}
