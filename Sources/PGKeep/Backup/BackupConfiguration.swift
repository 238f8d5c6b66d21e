import PGWire
import PGConnection
import Codecs
import Sinks

/// Everything `pgkeep backup` needs, as typed values: the CLI fills it from flags, tests and the
/// plugin shim fill it directly.
public struct BackupConfiguration: Sendable {
    public enum Format: String, Sendable, CaseIterable { case plain, tar }
    public enum WALMethod: String, Sendable, CaseIterable { case stream, fetch, none }

    public var connection: ConnectionParameters
    /// Where the backup goes: a directory, or "-" for standard output (tar format, one archive).
    /// Unused with a server-side `target`.
    public var targetDirectory: String
    public var format: Format = .plain
    public var walMethod: WALMethod = .stream
    public var compression: CompressionSpec? = nil
    public var tablespaceMapping: TablespaceMapping = TablespaceMapping()
    public var checkpoint: BaseBackupOptions.Checkpoint = .spread
    public var label: String = "pgkeep base backup"
    public var maxRateKBps: Int? = nil
    public var writeRecoveryConfig: Bool = false
    public var slot: SlotName? = nil
    public var createSlot: Bool = false
    public var sync: Bool = true
    public var syncMethod: Durability.Method = .fsync
    public var manifestChecksums: BaseBackupOptions.ManifestChecksums = .crc32c
    /// Keep what was written when the backup fails (for debugging); it stays marked incomplete.
    public var keepOnFailure: Bool = false
    public var showProgress: Bool = false
    /// Developer aid: write the BASE_BACKUP conversation to this file (fixtures/ are made so).
    public var recordStreamPath: String? = nil
    /// `--waldir`: plain format; pg_wal becomes a symlink to this (absolute, new or empty) directory.
    public var walDirectory: String? = nil
    /// Stream WAL through a temporary slot when no `slot` is given (`--no-slot`: none).
    public var temporarySlot: Bool = true
    /// 15+: the server writes the backup to a directory of its own, or discards it.
    public var target: BaseBackupOptions.Target = .client
    public var verifyChecksums: Bool = true
    /// `.no` (`--no-manifest`): the server sends none; completeness is then marked by the absence
    /// of `pgkeep.incomplete`, which the backup holds until its very end.
    public var manifest: BaseBackupOptions.Manifest = .yes
    /// With `showProgress`: let the server estimate the total size first (`--no-estimate-size`: don't).
    public var estimateSize: Bool = true
    /// Seconds between WAL streaming status updates.
    public var statusIntervalSeconds: Int = 10
    /// 17+: take an incremental backup against this earlier backup's manifest (UPLOAD_MANIFEST).
    public var incrementalManifest: String? = nil

    /// `-D -`: the tar archive goes to standard output.
    public var writesToStandardOutput: Bool { targetDirectory == "-" }
    /// Nothing is written here: the server keeps (or discards) the backup.
    public var isServerSide: Bool { target != .client }

    public init(connection: ConnectionParameters, targetDirectory: String) {
        self.connection = connection
        self.targetDirectory = targetDirectory
    }

    /// Rules that span several options, checked before anything connects or writes.
    public func validate() throws(PGKeepError) {
        if let compression, compression.location == .client, format == .plain {
            throw .invalidConfiguration("client-side compression needs --format=tar; plain output is written uncompressed (use server-… to compress on the wire)")
        }
        if createSlot, slot == nil { throw .invalidConfiguration("--create-slot needs --slot") }
        if slot != nil, walMethod != .stream { throw .invalidConfiguration("--slot only makes sense with --wal-method=stream") }
        if !tablespaceMapping.isEmpty, format == .tar {
            throw .invalidConfiguration("--tablespace-mapping applies to the plain format only")
        }
        if let rate = maxRateKBps, !(32...1_048_576).contains(rate) {
            throw .invalidConfiguration("--max-rate must be between 32 kB/s and 1 GB/s")
        }
        if writesToStandardOutput {
            guard format == .tar else { throw .invalidConfiguration("--pgdata=- (standard output) needs --format=tar") }
            guard walMethod != .stream else {
                throw .invalidConfiguration("cannot stream WAL to standard output: use --wal-method=fetch (WAL inside base.tar) or none")
            }
        }
        if let walDirectory {
            guard format == .plain else { throw .invalidConfiguration("--waldir can only be used with the plain format") }
            guard walDirectory.hasPrefix("/") else { throw .invalidConfiguration("--waldir must be an absolute path") }
        }
        if isServerSide {
            guard walMethod != .stream else {
                throw .invalidConfiguration("WAL cannot be streamed when the backup goes to a server-side target: use --wal-method=fetch or none")
            }
            if let compression, compression.location == .client {
                throw .invalidConfiguration("client-side compression is not possible with a server-side target; use server-\(compression.algorithm)")
            }
            if writeRecoveryConfig { throw .invalidConfiguration("--write-recovery-conf cannot be used with a server-side target") }
            if walDirectory != nil || !tablespaceMapping.isEmpty {
                throw .invalidConfiguration("--waldir and --tablespace-mapping do not apply to a server-side target")
            }
        }
        if incrementalManifest != nil, manifest == .no {
            throw .invalidConfiguration("an incremental backup needs a manifest of its own: drop --no-manifest")
        }
        if manifest == .no, manifestChecksums != .crc32c {
            throw .invalidConfiguration("--manifest-checksums needs a manifest: drop --no-manifest")
        }
    }
}

/// `-T OLD=NEW`: where a tablespace at OLD on the server goes in a plain backup.
public struct TablespaceMapping: Sendable, Equatable {
    public private(set) var pairs: [(old: String, new: String)] = []
    public init() {}
    public var isEmpty: Bool { pairs.isEmpty }

    public static func == (lhs: TablespaceMapping, rhs: TablespaceMapping) -> Bool {
        lhs.pairs.elementsEqual(rhs.pairs) { $0.old == $1.old && $0.new == $1.new }
    }

    /// Parses OLD=NEW; both absolute. "\=" escapes an equals sign, as in pg_basebackup.
    public mutating func add(_ text: String) throws(PGKeepError) {
        var old = "", new = "", seenSeparator = false, escaped = false
        for character in text {
            if escaped {
                if seenSeparator { new.append(character) } else { old.append(character) }
                escaped = false
                continue
            }
            if character == "\\" { escaped = true; continue }
            if character == "=" {
                if seenSeparator { throw .invalidConfiguration("multiple '=' in tablespace mapping '\(text)'") }
                seenSeparator = true
                continue
            }
            if seenSeparator { new.append(character) } else { old.append(character) }
        }
        guard seenSeparator, !old.isEmpty, !new.isEmpty else {
            throw .invalidConfiguration("tablespace mapping '\(text)' is not OLD=NEW")
        }
        guard old.hasPrefix("/"), new.hasPrefix("/") else {
            throw .invalidConfiguration("tablespace mapping '\(text)': both directories must be absolute paths")
        }
        pairs.append((Self.canonical(old), Self.canonical(new)))
    }

    public func target(for location: String) -> String {
        pairs.first { $0.old == Self.canonical(location) }?.new ?? location
    }

    /// OLD directories that name no tablespace of the server: almost certainly a typo.
    public func unmatched(_ locations: Set<String>) -> [String] {
        pairs.map(\.old).filter { !locations.contains($0) }
    }

    private static func canonical(_ path: String) -> String {
        var path = path
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        return path
    }
}
