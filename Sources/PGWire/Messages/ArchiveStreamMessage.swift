/// One CopyData message of the BASE_BACKUP stream on 15+, where the first byte says what follows.
/// Payload slices borrow the CopyData buffer: valid only while that buffer is.
public enum ArchiveStreamMessage {
    /// 'n': a new archive begins: its name (e.g. "base.tar", "16385.tar.gz") and, for a user
    /// tablespace, the tablespace's location on the server (empty for the main data directory).
    case newArchive(name: String, tablespaceLocation: String?)
    /// 'd': archive (or, after 'm', manifest) bytes.
    case data(UnsafeRawBufferPointer)
    /// 'p': bytes the server has read so far, before compression (cumulative).
    case progress(UInt64)
    /// 'm': the manifest follows, as 'd' messages (never compressed).
    case manifestFollows

    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> ArchiveStreamMessage {
        var cursor = ByteCursor(bytes)
        guard let type = cursor.readByte() else { throw .truncatedMessage("empty CopyData") }
        switch type {
        case UInt8(ascii: "n"):
            guard let name = cursor.readNullTerminatedString(), let location = cursor.readNullTerminatedString() else {
                throw .truncatedMessage("new-archive ('n')")
            }
            return .newArchive(name: name, tablespaceLocation: location.isEmpty ? nil : location)
        case UInt8(ascii: "d"):
            return .data(cursor.readRemaining())
        case UInt8(ascii: "p"):
            guard let done = cursor.readInteger(as: UInt64.self) else { throw .truncatedMessage("progress ('p')") }
            return .progress(done)
        case UInt8(ascii: "m"):
            return .manifestFollows
        default:
            throw .unknownMessageType(context: "base backup", byte: type)
        }
    }
}
