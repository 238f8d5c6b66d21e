/// A member path as raw bytes (PostgreSQL file names need not be UTF-8), checked so it can
/// only name something inside the directory the archive is extracted to.
///
/// The server is not trusted to name paths: absolute names and ".." are refused here; symlinks
/// that would lead a later member outside the target are refused by the extractor.
public struct ArchivePath: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(validating raw: some Collection<UInt8>) throws(TarError) {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        let display = String(decoding: raw, as: UTF8.self)
        if raw.first == UInt8(ascii: "/") { throw .unsafePath(display, reason: "absolute path") }
        for component in raw.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if component.elementsEqual([UInt8(ascii: ".")]) { continue }
            if component.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                throw .unsafePath(display, reason: "'..' component")
            }
            if !out.isEmpty { out.append(UInt8(ascii: "/")) }
            out.append(contentsOf: component)
        }
        if out.isEmpty { throw .unsafePath(display, reason: "empty path") }
        bytes = out
    }

    public init(validating text: String) throws(TarError) { try self.init(validating: Array(text.utf8)) }

    public var description: String { String(decoding: bytes, as: UTF8.self) }

    public var components: [ArraySlice<UInt8>] { bytes.split(separator: UInt8(ascii: "/")) }

    public func hasPrefix(_ directory: ArchivePath) -> Bool {
        bytes.count > directory.bytes.count && bytes.starts(with: directory.bytes)
            && bytes[directory.bytes.count] == UInt8(ascii: "/")
    }

    public static func == (lhs: ArchivePath, rhs: String) -> Bool { lhs.bytes.elementsEqual(rhs.utf8) }
}
