/// A path's last component and its directory, as `basename` and `dirname` read them (trailing
/// slashes ignored; `dirname("name")` is "."): the two things pgkeep asks of a path string.
public enum PathName {
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
