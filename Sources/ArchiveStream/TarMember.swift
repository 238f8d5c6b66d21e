/// One entry of a tar archive, as parsed (or as a stage wants written).
public struct TarMember: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        case file
        case directory
        case symlink(target: [UInt8])
    }

    /// Normalised: relative, no "./", "..", empty components or trailing slash.
    public var path: ArchivePath
    public var kind: Kind
    public var size: UInt64
    public var mode: UInt32
    public var modificationTime: Int64

    public init(path: ArchivePath, kind: Kind, size: UInt64, mode: UInt32, modificationTime: Int64) {
        self.path = path
        self.kind = kind
        self.size = size
        self.mode = mode
        self.modificationTime = modificationTime
    }
}
