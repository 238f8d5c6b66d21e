/// Where and how to compress, parsed once from pg_basebackup's syntax:
/// `[client-|server-]METHOD[:DETAIL]` where METHOD is gzip, lz4, zstd or none and DETAIL is a
/// level (`zstd:9`) or `level=N,workers=N,long` (a comma list, no empty items); or a bare level
/// 0–9, meaning client gzip (0: none). What pg_basebackup refuses is refused here, before
/// anything connects: an empty detail (`gzip:`), an empty item (`gzip:level=9,`), an unknown key.
public struct CompressionSpec: Hashable, Sendable, CustomStringConvertible {
    public enum Algorithm: String, Hashable, Sendable, CaseIterable {
        case gzip, lz4, zstd
        public var fileSuffix: String {
            switch self { case .gzip: ".gz"; case .lz4: ".lz4"; case .zstd: ".zst" }
        }
        public var levels: ClosedRange<Int> {
            switch self { case .gzip: 1...9; case .lz4: 1...12; case .zstd: -131072...22 }
        }
        /// The algorithm whose file suffix ends `name`, if any.
        public static func fromSuffix(of name: String) -> Algorithm? {
            allCases.first { name.hasSuffix($0.fileSuffix) }
        }
    }
    public enum Location: String, Hashable, Sendable { case client, server }

    public var algorithm: Algorithm
    public var location: Location
    public var level: Int?
    public var workers: Int?
    /// zstd's long-distance matching (`long`, `long=on`).
    public var longDistance: Bool?

    public init(algorithm: Algorithm, location: Location = .client, level: Int? = nil, workers: Int? = nil,
                longDistance: Bool? = nil) {
        self.algorithm = algorithm
        self.location = location
        self.level = level
        self.workers = workers
        self.longDistance = longDistance
    }

    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    /// nil for "none" (or level 0).
    public static func parse(_ text: String) throws(ParseError) -> CompressionSpec? {
        if let bare = Int(text) {
            guard (0...9).contains(bare) else { throw ParseError(description: "compression level \(bare) is not between 0 and 9") }
            return bare == 0 ? nil : CompressionSpec(algorithm: .gzip, level: bare)
        }
        var rest = Substring(text)
        var location = Location.client
        for candidate in [Location.client, .server] where rest.hasPrefix(candidate.rawValue + "-") {
            location = candidate
            rest = rest.dropFirst(candidate.rawValue.count + 1)
        }
        let parts = rest.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let method = String(parts[0])
        if method == "none" {
            guard parts.count == 1 else { throw ParseError(description: "compression 'none' takes no detail") }
            return nil
        }
        guard let algorithm = Algorithm(rawValue: method) else {
            throw ParseError(description: "unknown compression method '\(method)' (expected gzip, lz4, zstd or none)")
        }
        var spec = CompressionSpec(algorithm: algorithm, location: location)
        if parts.count == 2 {
            let detail = parts[1]
            if detail.isEmpty { throw ParseError(description: "found empty string where a compression option was expected") }
            if let level = Int(detail) {
                spec.level = level
            } else {
                for item in detail.split(separator: ",", omittingEmptySubsequences: false) {
                    if item.isEmpty { throw ParseError(description: "found empty string where a compression option was expected") }
                    let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                    let key = pair[0], value = pair.count == 2 ? String(pair[1]) : nil
                    switch key {
                    case "level":
                        guard let text = value, let number = Int(text) else { throw ParseError(description: "value for compression option \"level\" must be an integer") }
                        spec.level = number
                    case "workers":
                        guard let text = value, let number = Int(text) else { throw ParseError(description: "value for compression option \"workers\" must be an integer") }
                        guard algorithm == .zstd else { throw ParseError(description: "compression algorithm \"\(algorithm)\" does not accept a worker count") }
                        guard (0...256).contains(number) else { throw ParseError(description: "zstd workers must be 0–256") }
                        spec.workers = number
                    case "long":
                        guard algorithm == .zstd else { throw ParseError(description: "compression algorithm \"\(algorithm)\" does not support long-distance mode") }
                        guard let flag = value.map(Self.boolean) ?? true else {
                            throw ParseError(description: "value for compression option \"long\" must be a Boolean value")
                        }
                        spec.longDistance = flag
                    default:
                        throw ParseError(description: "unrecognized compression option: \"\(key)\"")
                    }
                }
            }
        }
        if let level = spec.level, !algorithm.levels.contains(level) {
            throw ParseError(description: "\(algorithm) level \(level) is outside \(algorithm.levels.lowerBound)…\(algorithm.levels.upperBound)")
        }
        return spec
    }

    /// PostgreSQL's boolean spellings (parse_bool): on/off, true/false, yes/no, 1/0.
    static func boolean(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "on", "true", "yes", "1", "t", "y": true
        case "off", "false", "no", "0", "f", "n": false
        default: nil
        }
    }

    /// COMPRESSION_DETAIL as the server takes it ("level=3,workers=2,long"); nil when empty.
    public var detail: String? {
        let parts = [level.map { "level=\($0)" }, workers.map { "workers=\($0)" }, longDistance.map { $0 ? "long" : "long=false" }].compactMap { $0 }
        return parts.isEmpty ? nil : parts.joined(separator: ",")
    }

    public var description: String {
        var text = "\(location.rawValue)-\(algorithm.rawValue)"
        let detail = [level.map { "level=\($0)" }, workers.map { "workers=\($0)" }, longDistance.map { "long=\($0)" }].compactMap { $0 }
        if !detail.isEmpty { text += ":" + detail.joined(separator: ",") }
        return text
    }
}
