/// What to ask BASE_BACKUP for, as typed values. `command(for:)` renders it in the syntax the
/// server understands; this is the only place that text is written.
public struct BaseBackupOptions: Hashable, Sendable {
    public enum Checkpoint: String, Sendable { case fast, spread }
    public enum ManifestChecksums: String, Sendable, CaseIterable {
        case none = "NONE", crc32c = "CRC32C", sha224 = "SHA224", sha256 = "SHA256", sha384 = "SHA384", sha512 = "SHA512"
    }
    /// Server-side compression of the archives (15+).
    public struct ServerCompression: Hashable, Sendable {
        public enum Method: String, Sendable { case gzip, lz4, zstd }
        public var method: Method
        public var level: Int?
        public var workers: Int?
        /// zstd long-distance matching.
        public var long: Bool?
        public init(method: Method, level: Int? = nil, workers: Int? = nil, long: Bool? = nil) {
            self.method = method
            self.level = level
            self.workers = workers
            self.long = long
        }
        /// COMPRESSION_DETAIL text, e.g. "level=3,workers=2,long"; nil when there is nothing to say.
        public var detail: String? {
            let parts = [level.map { "level=\($0)" }, workers.map { "workers=\($0)" }, long.map { $0 ? "long" : "long=false" }].compactMap { $0 }
            return parts.isEmpty ? nil : parts.joined(separator: ",")
        }
    }

    /// Where the server puts the backup (15+): sent to us (the default), written to a directory on
    /// the server, or discarded (a test of the server's side).
    public enum Target: Hashable, Sendable {
        case client
        case server(directory: String)
        case blackhole
    }

    public enum Manifest: String, Sendable { case yes, forceEncode = "force-encode", no }

    public var label: String
    public var progress: Bool = false
    public var checkpoint: Checkpoint = .spread
    /// Include the WAL needed to restore in the archive (`-X fetch`).
    public var includeWAL: Bool = false
    /// Do not wait for the end-of-backup WAL to be archived (we stream or fetch it ourselves).
    public var waitForWALArchive: Bool = false
    /// kB per second, 32…1048576; nil for unlimited.
    public var maxRateKBps: Int? = nil
    public var tablespaceMap: Bool = true
    public var manifest: Manifest = .yes
    public var manifestChecksums: ManifestChecksums = .crc32c
    public var serverCompression: ServerCompression? = nil
    /// Verify data-page checksums while reading (the server's default).
    public var verifyChecksums: Bool = true
    public var target: Target = .client
    /// 17+: an incremental backup against the manifest uploaded (UPLOAD_MANIFEST) just before.
    public var incremental: Bool = false

    public init(label: String) { self.label = label }

    public func command(for version: ServerVersion) -> String {
        version.usesParenthesizedOptions ? parenthesizedCommand() : legacyCommand()
    }

    /// 15+: `BASE_BACKUP (LABEL 'x', PROGRESS, CHECKPOINT 'fast', …)`.
    private func parenthesizedCommand() -> String {
        var options = ["LABEL \(quoteLiteral(label))"]
        if progress { options.append("PROGRESS") }
        if checkpoint == .fast { options.append("CHECKPOINT 'fast'") }
        if includeWAL { options.append("WAL") }
        options.append("WAIT \(waitForWALArchive ? "true" : "false")")
        if let maxRateKBps { options.append("MAX_RATE \(maxRateKBps)") }
        if tablespaceMap { options.append("TABLESPACE_MAP") }
        if !verifyChecksums { options.append("VERIFY_CHECKSUMS false") }
        if manifest != .no {
            options.append("MANIFEST \(quoteLiteral(manifest.rawValue))")
            options.append("MANIFEST_CHECKSUMS \(quoteLiteral(manifestChecksums.rawValue))")
        }
        switch target {
        case .client: break
        case .server(let directory):
            options.append("TARGET 'server'")
            options.append("TARGET_DETAIL \(quoteLiteral(directory))")
        case .blackhole:
            options.append("TARGET 'blackhole'")
        }
        if let compression = serverCompression {
            options.append("COMPRESSION \(quoteLiteral(compression.method.rawValue))")
            if let detail = compression.detail { options.append("COMPRESSION_DETAIL \(quoteLiteral(detail))") }
        }
        if incremental { options.append("INCREMENTAL") }
        return "BASE_BACKUP (" + options.joined(separator: ", ") + ")"
    }

    /// 14: `BASE_BACKUP LABEL 'x' PROGRESS FAST WAL NOWAIT MAX_RATE n TABLESPACE_MAP MANIFEST 'yes' …`.
    private func legacyCommand() -> String {
        var words = ["BASE_BACKUP", "LABEL", quoteLiteral(label)]
        if progress { words.append("PROGRESS") }
        if checkpoint == .fast { words.append("FAST") }
        if includeWAL { words.append("WAL") }
        if !waitForWALArchive { words.append("NOWAIT") }
        if let maxRateKBps { words += ["MAX_RATE", String(maxRateKBps)] }
        if tablespaceMap { words.append("TABLESPACE_MAP") }
        if !verifyChecksums { words.append("NOVERIFY_CHECKSUMS") }
        if manifest != .no {
            words += ["MANIFEST", quoteLiteral(manifest.rawValue), "MANIFEST_CHECKSUMS", quoteLiteral(manifestChecksums.rawValue)]
        }
        return words.joined(separator: " ")
    }
}

/// A replication-grammar string literal: single quotes, embedded quotes doubled.
public func quoteLiteral(_ text: String) -> String {
    "'" + text.replacingAll("'", with: "''") + "'"
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        out.reserveCapacity(count)
        for character in self { if character == target { out += replacement } else { out.append(character) } }
        return out
    }
}
