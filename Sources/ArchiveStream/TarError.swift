/// Why a tar stream was refused. Every case names what was wrong; none is a trap.
public enum TarError: Error, Equatable, Sendable, CustomStringConvertible {
    case badChecksum(offset: UInt64)
    case notUstar(offset: UInt64)
    case badNumericField(field: String, offset: UInt64)
    case unsupportedMemberType(UInt8, path: String)
    case unsafePath(String, reason: String)
    case unexpectedContents(path: String)
    case truncated(String)
    case garbageAfterEnd(offset: UInt64)
    case memberTooLarge(path: String, size: UInt64, limit: UInt64)

    public var description: String {
        switch self {
        case .badChecksum(let offset): "corrupt tar header at byte \(offset): checksum mismatch"
        case .notUstar(let offset): "corrupt tar header at byte \(offset): not a ustar header"
        case .badNumericField(let field, let offset): "corrupt tar header at byte \(offset): bad \(field) field"
        case .unsupportedMemberType(let type, let path):
            "unsupported tar member type '\(Character(Unicode.Scalar(type)))' for \(path) (PostgreSQL sends files, directories and symlinks only)"
        case .unsafePath(let path, let reason): "refusing unsafe path '\(path)' from server: \(reason)"
        case .unexpectedContents(let path): "tar member \(path) is not a file but has contents"
        case .truncated(let what): "archive stream truncated: \(what)"
        case .garbageAfterEnd(let offset): "non-zero bytes after the end of the archive at byte \(offset)"
        case .memberTooLarge(let path, let size, let limit): "tar member \(path) is \(size) bytes, more than the \(limit) allowed"
        }
    }
}
