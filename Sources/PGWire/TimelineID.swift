/// A WAL timeline. IDENTIFY_SYSTEM sends it as int4 on 14/15 and int8 on 16+: always parse text.
public struct TimelineID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ value: UInt32) { self.rawValue = value }
    public init?(_ text: some StringProtocol) {
        guard let value = UInt32(text), value > 0 else { return nil }
        self.rawValue = value
    }
    public var description: String { String(rawValue) }
    public static func < (lhs: TimelineID, rhs: TimelineID) -> Bool { lhs.rawValue < rhs.rawValue }
}
