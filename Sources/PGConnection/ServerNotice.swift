/// A NoticeResponse (WARNING, NOTICE, …) the server sent, e.g. a checksum failure during BASE_BACKUP.
public struct ServerNotice: Equatable, Sendable {
    /// Non-localised (WARNING, NOTICE): decide by this or `sqlState`.
    public var severity: String
    public var localizedSeverity: String
    public var sqlState: String
    public var message: String
    public var detail: String?

    public init(severity: String, localizedSeverity: String, sqlState: String, message: String, detail: String?) {
        self.severity = severity
        self.localizedSeverity = localizedSeverity
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
    }

    /// As PostgreSQL's own tools print a notice: "WARNING:  message" (severity in the server's language).
    public var displayText: String {
        "\(localizedSeverity):  \(message)" + (detail.map { "\nDETAIL:  \($0)" } ?? "")
    }
}
