import Glibc

/// A path's last component and its directory, as `basename` and `dirname` read them (trailing
/// slashes ignored; `dirname("name")` is "."): the two things pgkeep asks of a path string.
public enum PathName {
    /// Where scratch files go: `$TMPDIR` if set, else /tmp (without a trailing slash).
    public static var temporaryDirectory: String {
        guard let value = getenv("TMPDIR").map({ String(cString: $0) }), !value.isEmpty else { return "/tmp" }
        return value.count > 1 && value.hasSuffix("/") ? String(value.dropLast()) : value
    }


    public static func lastComponent(_ path: String) -> String {
        let trimmed = path.utf8.reversed().drop(while: { $0 == UInt8(ascii: "/") }).count
        guard trimmed > 0 else { return path.isEmpty ? "" : "/" }
        let body = path.utf8.prefix(trimmed)
        guard let slash = body.lastIndex(of: UInt8(ascii: "/")) else { return String(Substring(body)) }
        return String(Substring(body[body.index(after: slash)...]))
    }

    public static func directory(_ path: String) -> String {
        let trimmed = path.utf8.reversed().drop(while: { $0 == UInt8(ascii: "/") }).count
        guard trimmed > 0 else { return path.isEmpty ? "." : "/" }
        let body = path.utf8.prefix(trimmed)
        guard let slash = body.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        let parent = body[..<slash].reversed().drop(while: { $0 == UInt8(ascii: "/") }).count
        return parent == 0 ? "/" : String(Substring(body.prefix(parent)))
    }
}
