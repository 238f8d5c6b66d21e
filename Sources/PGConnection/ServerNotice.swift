/// A NoticeResponse (WARNING, NOTICE, …) the server sent, e.g. a checksum failure during BASE_BACKUP.
public struct ServerNotice: Equatable, Sendable {
    public var severity: String
    public var sqlState: String
    public var message: String
    public var detail: String?
}
