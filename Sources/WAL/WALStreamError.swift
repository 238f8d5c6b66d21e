/// WAL that cannot be used as it arrived: a damaged timeline history, a stream that ended before
/// the position a backup needs, or a failure on the streaming thread (`underlying` keeps what it
/// was, so its kind is not lost on the way to the caller).
public struct WALStreamError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public let underlying: (any Error & Sendable)?
    public init(_ description: String, underlying: (any Error & Sendable)? = nil) {
        self.description = description
        self.underlying = underlying
    }
}
