/// A compression library refused something. Corrupt input is reported as such, with the library's words.
public enum CodecError: Error, Equatable, Sendable, CustomStringConvertible {
    case setupFailed(String)
    case compressionFailed(String)
    case corruptInput(String)
    case truncatedInput(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .setupFailed(let why): "could not set up compression: \(why)"
        case .compressionFailed(let why): "compression failed: \(why)"
        case .corruptInput(let why): "corrupt compressed stream: \(why)"
        case .truncatedInput(let why): "compressed stream ends early: \(why)"
        case .unsupported(let why): why
        }
    }
}
