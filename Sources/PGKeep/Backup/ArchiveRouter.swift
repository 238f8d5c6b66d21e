#if canImport(Glibc)
import Glibc
#endif
import ArchiveStream
import Codecs
import PGWire
import Sinks

/// Builds and owns the stage chain of the archive being received, like pg_basebackup's
/// CreateBackupStreamer: back to front, the writer, then the archiver or extractor, the recovery
/// injector, the member policy, the tar parser, and a decompressor first when the bytes arrive
/// compressed and must be parsed.
///
///   plain:  [decompress] → TarParser → MemberPolicy → [RecoveryInjector] → DirectoryExtractor
///   tar:    [decompress] → TarParser → MemberPolicy → [RecoveryInjector] → TarArchiver → [compress] → FileSink
///   tar, server-compressed, nothing to inject:  FileSink (bytes as they came)
///   -D -:   [decompress] → TarParser → MemberPolicy → [RecoveryInjector] → Appender (+ backup_manifest)
///           → TarArchiver → [compress] → standard output
final class ArchiveRouter {
    /// Where the archives go.
    enum Output {
        case directory(TargetDirectory)
        /// `-D -`: one archive, base.tar, on standard output; the manifest becomes its last member.
        case standardOutput
        /// A server-side target: the server sends no archive data at all.
        case none
        /// The caller keeps the members itself (a repository, the plugin backend).
        case consumer(BackupArchiveConsumer)
    }

    struct Statistics {
        var archives = 0
        var files = 0
        /// Plain format: files named from those made ahead on a thread of their own.
        var filesMadeAhead = 0
        var bytesReceived: UInt64 = 0
        var bytesWritten: UInt64 = 0
    }

    private let configuration: BackupConfiguration
    private let version: ServerVersion
    private let output: Output
    private let modes: FileModes
    private let recoverySettings: String?
    private(set) var tablespaces: [BackupTablespace] = []
    private(set) var tablespaceTargets: [TargetDirectory] = []
    private var current: ByteStage?
    private var currentFinish: (() throws -> Void)?
    private var manifest: FileSink?
    /// `-D -`: the manifest is gathered here, then appended to base.tar.
    private var manifestInMemory: [UInt8]?
    private var appender: TarMemberAppender?
    private var appenderFinish: (() -> Void)?
    private(set) var statistics = Statistics()

    static let manifestName = "backup_manifest"
    static let manifestTemporaryName = "backup_manifest.tmp"

    init(configuration: BackupConfiguration, version: ServerVersion, output: Output, recoverySettings: String?,
         modes: FileModes = .ownerOnly) {
        self.configuration = configuration
        self.version = version
        self.output = output
        self.modes = modes
        self.recoverySettings = recoverySettings
    }

    /// Convenience for a directory target (tests, replay).
    convenience init(configuration: BackupConfiguration, version: ServerVersion, target: TargetDirectory, recoverySettings: String?) {
        self.init(configuration: configuration, version: version, output: .directory(target), recoverySettings: recoverySettings)
    }

    var targetPath: String? {
        if case .directory(let target) = output { return target.path }
        return nil
    }

    /// Where a plain backup puts a tablespace: its mapping, or — for an in-place tablespace
    /// (`LOCATION ''`, which the server lists by a relative path) — inside the backup at
    /// `pg_tblspc/<oid>`. A relative location the server sends that is anything else is refused:
    /// nothing is ever written outside the target directories.
    static func plainLocation(of tablespace: BackupTablespace, root: String, mapping: TablespaceMapping) throws -> String {
        guard let location = tablespace.location, let oid = tablespace.oid else { return root }
        if location.hasPrefix("/") { return mapping.target(for: location) }
        guard location == "pg_tblspc/\(oid)" else {
            throw PGKeepError.unsafeArchive("refusing tablespace \(oid) at the relative location '\(location)': an in-place tablespace lies at pg_tblspc/\(oid)")
        }
        return root + "/" + location
    }

    /// Prepares a directory for each user tablespace (plain format): each must be new or empty,
    /// like the main target, and is removed again if the backup fails.
    func prepare(_ tablespaces: [BackupTablespace]) throws {
        self.tablespaces = tablespaces
        let locations = Set(tablespaces.compactMap(\.location))
        if let typo = configuration.tablespaceMapping.unmatched(locations).first {
            throw PGKeepError.invalidConfiguration("tablespace mapping names \(typo), which is not a tablespace of this server (it has: \(locations.sorted().joined(separator: ", ")))")
        }
        switch output {
        case .none:
            return
        case .consumer(let consumer):
            try consumer.tablespacesKnown(tablespaces)
        case .standardOutput:
            guard tablespaces.count == 1 else {
                throw PGKeepError.invalidConfiguration("can only write a single tablespace to standard output; the cluster has \(tablespaces.count): write the tar backup to a directory instead")
            }
        case .directory(let target):
            guard configuration.format == .plain else { return }
            for tablespace in tablespaces where !tablespace.isMainDirectory {
                let path = try Self.plainLocation(of: tablespace, root: target.path, mapping: configuration.tablespaceMapping)
                do {
                    tablespaceTargets.append(try TargetDirectory(preparing: path, mode: modes.directory))
                } catch {
                    throw PGKeepError.storage("tablespace \(tablespace.oid!) (\(tablespace.location!)): \(error)")
                }
            }
        }
    }

    func startArchive(_ start: BaseBackupStateMachine.ArchiveStart) throws {
        let name = try ArchiveName(validating: start.name)
        let tablespace = try tablespaceFor(name, location: start.tablespaceLocation)
        let serverCompression = configuration.compression.flatMap { $0.location == .server ? $0.algorithm : nil }
        guard name.compression == serverCompression else {
            throw PGKeepError.protocolViolation("archive \(start.name) does not carry the compression requested (\(serverCompression?.rawValue ?? "none"))")
        }
        let isMain = tablespace.isMainDirectory
        let inject = isMain ? recoverySettings : nil
        statistics.archives += 1

        let target: TargetDirectory
        switch output {
        case .none:
            // A server-side target: the server still names each archive it writes, and sends
            // no bytes of it.
            current = RefusingStage(what: "archive \(start.name)")
            return
        case .standardOutput:
            try startStandardOutputArchive(inject: inject, compressed: serverCompression)
            return
        case .consumer(let consumer):
            current = try parsingChain(into: try consumer.startArchive(tablespace), isMain: isMain, inject: inject, compressed: serverCompression)
            currentFinish = nil
            return
        case .directory(let directory):
            target = directory
        }

        switch configuration.format {
        case .plain:
            let root = try Self.plainLocation(of: tablespace, root: target.path, mapping: configuration.tablespaceMapping)
            let walDirectory = isMain ? configuration.walDirectory : nil
            let extractor = try DirectoryExtractor(root: root, startsWriteback: configuration.sync, modes: modes,
                                                   walDirectory: walDirectory) { [tablespaces, mapping = configuration.tablespaceMapping] path, target in
                let tablespace = try ArchiveMemberPolicy.tablespace(for: path, target: target, in: tablespaces, isMainArchive: true)
                return Array(mapping.target(for: tablespace.location!).utf8)
            }
            currentFinish = { [unowned self] in
                statistics.files += extractor.filesWritten
                statistics.filesMadeAhead += extractor.filesMadeAhead
                statistics.bytesWritten += extractor.bytesWritten
            }
            current = try parsingChain(into: extractor, isMain: isMain, inject: inject, compressed: serverCompression)
        case .tar:
            if let serverCompression, inject == nil {
                let sink = try FileSink(path: target.path + "/" + name.tarName + serverCompression.fileSuffix, mode: modes.file,
                                        syncOnFinish: false, startsWriteback: configuration.sync)
                currentFinish = { [unowned self] in statistics.bytesWritten += sink.bytesWritten }
                current = sink
                return
            }
            let sink = try FileSink(path: target.path + "/" + name.tarName + (outputCompression?.algorithm.fileSuffix ?? ""), mode: modes.file,
                                    syncOnFinish: false, startsWriteback: configuration.sync)
            var output: ByteStage = sink
            if let outputCompression { output = try Codecs.compressor(outputCompression, next: output) }
            let counter = MemberCounter(next: TarArchiver(next: output))
            currentFinish = { [unowned self] in
                statistics.files += counter.files
                statistics.bytesWritten += sink.bytesWritten
            }
            current = try parsingChain(into: counter, isMain: isMain, inject: inject, compressed: serverCompression)
        }
    }

    /// The client-side compression of the tar output. Server-compressed archives that are
    /// re-parsed (to inject something) are recompressed the same way, here. Client zstd without a
    /// `workers` setting compresses on every online processor (pg_basebackup's on one).
    private var outputCompression: CompressionSpec? {
        configuration.compression.map { spec in
            guard spec.location == .client else { return CompressionSpec(algorithm: spec.algorithm, location: .client, level: spec.level) }
            var spec = spec
            if spec.algorithm == .zstd && spec.workers == nil { spec.workers = ZstdCompressor.defaultWorkers }
            return spec
        }
    }

    private func startStandardOutputArchive(inject: String?, compressed: CompressionSpec.Algorithm?) throws {
        let sink = DescriptorSink(descriptor: STDOUT_FILENO, name: "standard output")
        var output: ByteStage = sink
        if let outputCompression { output = try Codecs.compressor(outputCompression, next: output) }
        let counter = MemberCounter(next: TarArchiver(next: output))
        let appender = TarMemberAppender(next: counter)
        self.appender = appender
        appenderFinish = { [unowned self] in
            statistics.files += counter.files
            statistics.bytesWritten += sink.bytesWritten
        }
        current = try parsingChain(into: appender, isMain: true, inject: inject, compressed: compressed)
        currentFinish = { [unowned self] in
            // Without a manifest to append, the archive ends with its own members.
            if configuration.manifest == .no { try closeStandardOutput() }
        }
    }

    private func closeStandardOutput() throws {
        guard let appender = appender.take() else { return }
        try appender.close()
        appenderFinish?()
    }

    private func parsingChain(into consumer: TarMemberConsumer, isMain: Bool, inject: String?,
                              compressed: CompressionSpec.Algorithm?) throws -> ByteStage {
        var members: TarMemberConsumer = consumer
        if let inject { members = RecoveryConfigInjector(next: members, settings: inject) }
        members = ArchiveMemberPolicy(next: members, tablespaces: tablespaces, isMainArchive: isMain)
        var stage: ByteStage = TarParser(next: members, requiresTerminator: version.terminatesTar)
        if let compressed { stage = try Codecs.decompressor(compressed, next: stage) }
        return stage
    }

    func archiveData(_ bytes: UnsafeRawBufferPointer) throws {
        guard let current else { throw PGKeepError.protocolViolation("archive data outside an archive") }
        statistics.bytesReceived += UInt64(bytes.count)
        try current.consume(bytes)
    }

    func finishArchive() throws {
        guard let stage = current.take() else { return }
        try stage.finish()
        try currentFinish?()
        currentFinish = nil
    }

    func startManifest() throws {
        switch output {
        case .directory(let target):
            manifest = try FileSink(path: target.path + "/" + Self.manifestTemporaryName, mode: modes.file, syncOnFinish: false)
        case .standardOutput, .consumer:
            manifestInMemory = []
        case .none:
            manifest = nil
        }
    }

    func manifestData(_ bytes: UnsafeRawBufferPointer) throws {
        if manifestInMemory != nil {
            manifestInMemory!.append(contentsOf: bytes)
            return
        }
        guard let manifest else { throw PGKeepError.protocolViolation("manifest data outside the manifest") }
        try manifest.consume(bytes)
    }

    func finishManifest() throws {
        if case .consumer(let consumer) = output, let bytes = manifestInMemory.take() {
            try consumer.manifestReceived(bytes)
            return
        }
        if let bytes = manifestInMemory.take() {
            guard let appender else { throw PGKeepError.protocolViolation("a manifest without base.tar to carry it") }
            try appender.append(Self.manifestName, contents: bytes, mode: UInt32(modes.file), modificationTime: Int64(time(nil)))
            try closeStandardOutput()
            return
        }
        guard let manifest = manifest.take() else { return }
        try manifest.finish()
    }

    private func tablespaceFor(_ name: ArchiveName, location: String?) throws -> BackupTablespace {
        guard let tablespace = tablespaces.first(where: { $0.oid == name.tablespaceOID }) else {
            throw PGKeepError.unsafeArchive("the server sent archive \(name.tarName) for a tablespace it did not list")
        }
        if version.sendsSingleCopyStream, tablespace.location != location {
            throw PGKeepError.unsafeArchive("archive \(name.tarName) names location '\(location ?? "")', but the tablespace list says '\(tablespace.location ?? "")'")
        }
        return tablespace
    }
}

/// Where bytes must not arrive: the server said it writes the backup on its side.
final class RefusingStage: ByteStage {
    let what: String
    init(what: String) { self.what = what }
    func consume(_ bytes: UnsafeRawBufferPointer) throws {
        throw PGKeepError.protocolViolation("the server sent the bytes of \(what), but the backup goes to a server-side target")
    }
    func finish() throws {}
}

/// Counts the files passing to a tar writer (for the summary), passing everything on.
final class MemberCounter: TarMemberConsumer {
    private let next: TarMemberConsumer
    private(set) var files = 0
    init(next: TarMemberConsumer) { self.next = next }
    func beginMember(_ member: TarMember, rawHeader: UnsafeRawBufferPointer?) throws {
        if member.kind == .file { files += 1 }
        try next.beginMember(member, rawHeader: rawHeader)
    }
    func memberContents(_ bytes: UnsafeRawBufferPointer) throws { try next.memberContents(bytes) }
    func endMember() throws { try next.endMember() }
    func endArchive() throws { try next.endArchive() }
}
