import Codecs

/// An archive name the server sent ('n' on 15+), checked before it becomes a file name:
/// `base.tar` or `<oid>.tar`, plus the suffix of the server compression in use, nothing else.
/// A hostile server naming "../../etc/passwd" stops here.
struct ArchiveName: Equatable {
    /// nil for the main data directory.
    let tablespaceOID: UInt32?
    /// The server compression the suffix names, if any.
    let compression: CompressionSpec.Algorithm?

    init(validating name: String) throws(PGKeepError) {
        var rest = Substring(name)
        compression = CompressionSpec.Algorithm.fromSuffix(of: name)
        if let compression { rest = rest.dropLast(compression.fileSuffix.count) }
        guard rest.hasSuffix(".tar") else { throw .unsafeArchive("refusing archive name '\(name)' from server: not <name>.tar") }
        let stem = rest.dropLast(4)
        if stem == "base" {
            tablespaceOID = nil
        } else if let oid = UInt32(stem), stem.allSatisfy(\.isASCII), stem.first != "+" {
            tablespaceOID = oid
        } else {
            throw .unsafeArchive("refusing archive name '\(name)' from server: expected base.tar or <oid>.tar")
        }
    }

    /// "base.tar" / "16385.tar", without compression suffix.
    var tarName: String { (tablespaceOID.map(String.init) ?? "base") + ".tar" }
}
