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
final class ArchiveRouter {
    struct Statistics {
        var archives = 0
        var files = 0
        var bytesReceived: UInt64 = 0
        var bytesWritten: UInt64 = 0
    }

    private let configuration: BackupConfiguration
    private let version: ServerVersion
    private let target: TargetDirectory
    private let recoverySettings: String?
    private(set) var tablespaces: [BackupTablespace] = []
    private(set) var tablespaceTargets: [TargetDirectory] = []
    private var current: ByteStage?
    private var currentFinish: (() -> Void)?
    private var manifest: FileSink?
    private(set) var statistics = Statistics()

    static let manifestName = "backup_manifest"
    static let manifestTemporaryName = "backup_manifest.tmp"

    init(configuration: BackupConfiguration, version: ServerVersion, target: TargetDirectory, recoverySettings: String?) {
        self.configuration = configuration
        self.version = version
        self.target = target
        self.recoverySettings = recoverySettings
    }

    /// Prepares a directory for each user tablespace (plain format): each must be new or empty,
    /// like the main target, and is removed again if the backup fails.
    func prepare(_ tablespaces: [BackupTablespace]) throws {
        self.tablespaces = tablespaces
        let locations = Set(tablespaces.compactMap(\.location))
        if let typo = configuration.tablespaceMapping.unmatched(locations).first {
            throw PGKeepError.invalidConfiguration("tablespace mapping names \(typo), which is not a tablespace of this server (it has: \(locations.sorted().joined(separator: ", ")))")
        }
        guard configuration.format == .plain else { return }
        for tablespace in tablespaces {
            guard let location = tablespace.location else { continue }
            let path = configuration.tablespaceMapping.target(for: location)
            do {
                tablespaceTargets.append(try TargetDirectory(preparing: path))
            } catch {
                throw PGKeepError.storage("tablespace \(tablespace.oid!) (\(location)): \(error)")
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

        switch configuration.format {
        case .plain:
            let root = isMain ? target.path : tablespaceTargets.first { $0.path == configuration.tablespaceMapping.target(for: tablespace.location!) }!.path
            let extractor = try DirectoryExtractor(root: root, startsWriteback: configuration.sync) { [tablespaces, mapping = configuration.tablespaceMapping] path, target in
                let tablespace = try ArchiveMemberPolicy.tablespace(for: path, target: target, in: tablespaces, isMainArchive: true)
                return Array(mapping.target(for: tablespace.location!).utf8)
            }
            currentFinish = { [unowned self] in
                statistics.files += extractor.filesWritten
                statistics.bytesWritten += extractor.bytesWritten
            }
            current = try parsingChain(into: extractor, isMain: isMain, inject: inject, compressed: serverCompression)
        case .tar:
            if let serverCompression, inject == nil {
                let sink = try FileSink(path: target.path + "/" + name.tarName + serverCompression.fileSuffix, syncOnFinish: false,
                                        startsWriteback: configuration.sync)
                currentFinish = { [unowned self] in statistics.bytesWritten += sink.bytesWritten }
                current = sink
                return
            }
            let outputCompression = configuration.compression.map { spec in
                // Server-compressed and re-parsed for injection: recompress the same way, here.
                spec.location == .server ? CompressionSpec(algorithm: spec.algorithm, location: .client, level: spec.level) : spec
            }
            let sink = try FileSink(path: target.path + "/" + name.tarName + (outputCompression?.algorithm.fileSuffix ?? ""),
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
        currentFinish?()
        currentFinish = nil
    }

    func startManifest() throws {
        manifest = try FileSink(path: target.path + "/" + Self.manifestTemporaryName, syncOnFinish: false)
    }

    func manifestData(_ bytes: UnsafeRawBufferPointer) throws {
        guard let manifest else { throw PGKeepError.protocolViolation("manifest data outside the manifest") }
        try manifest.consume(bytes)
    }

    func finishManifest() throws {
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
