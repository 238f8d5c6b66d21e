/// A CopyData message the server sends during START_REPLICATION … PHYSICAL.
public enum ReplicationMessage {
    /// 'w': WAL bytes starting at `walStart`. `serverWALEnd` is the end of WAL on the server,
    /// not the end of this message. `data` borrows the CopyData buffer.
    case xlogData(walStart: LSN, serverWALEnd: LSN, sendTime: Int64, data: UnsafeRawBufferPointer)
    /// 'k': keepalive; when `replyRequested` the server wants a status update now.
    case primaryKeepalive(serverWALEnd: LSN, sendTime: Int64, replyRequested: Bool)

    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> ReplicationMessage {
        var cursor = ByteCursor(bytes)
        guard let type = cursor.readByte() else { throw .truncatedMessage("empty CopyData") }
        switch type {
        case UInt8(ascii: "w"):
            guard let start = cursor.readInteger(as: UInt64.self), let end = cursor.readInteger(as: UInt64.self),
                  let time = cursor.readInteger(as: Int64.self)
            else { throw .truncatedMessage("XLogData ('w')") }
            return .xlogData(walStart: LSN(start), serverWALEnd: LSN(end), sendTime: time, data: cursor.readRemaining())
        case UInt8(ascii: "k"):
            guard let end = cursor.readInteger(as: UInt64.self), let time = cursor.readInteger(as: Int64.self),
                  let reply = cursor.readByte()
            else { throw .truncatedMessage("keepalive ('k')") }
            return .primaryKeepalive(serverWALEnd: LSN(end), sendTime: time, replyRequested: reply != 0)
        default:
            throw .unknownMessageType(context: "replication", byte: type)
        }
    }
}
