#if canImport(Glibc)
import Glibc
#endif
import ArchiveStream
import Dump
import FoundationEssentials
import Logging
import PGKeep
import PluginFrames
import Sinks

/// A dump-mode backup: `pgkeep dump`'s layout as virtual files under /@PG/<service>/, each
/// streamed from pg_dump (or pg_dumpall, or the server) to Bacula as it is produced. A dump is
/// always whole: an Incremental or Differential job takes a full dump and says so.
final class DumpBackupSession {
    let options: PluginOptions
    let level: Character
    let channel: FrameChannel
    let observer: JobObserver
    let cancellation: CancellationToken

    init(options: PluginOptions, level: Character, channel: FrameChannel, observer: JobObserver, cancellation: CancellationToken) {
        self.options = options
        self.level = level
        self.channel = channel
        self.observer = observer
        self.cancellation = cancellation
    }

    /// True when every database was dumped or, without abort_on_error, when the failures were
    /// reported as errors and the rest was sent (Bacula then says "OK -- with warnings").
    func run() throws -> Bool {
        if level == "I" || level == "D" {
            channel.message(.warning, "a dump is always whole: this \(PITRBackupSession.levelName(level)) job takes a full dump")
        }
        let configuration = try Self.configuration(options)
        let output = FrameDumpOutput(channel: channel, prefix: options.prefix)
        let summary = try DumpJob(configuration: configuration, output: output, observer: observer, cancellation: cancellation).run()
        for warning in summary.warnings { channel.message(.warning, warning) }
        let failed = summary.databases.filter { !$0.ok }
        channel.message(.info, "dumped \(summary.databases.count - failed.count) of \(summary.databases.count) database(s) with \(summary.tools); \(summary.globals.joined(separator: ", "))")
        return true
    }

    static func configuration(_ options: PluginOptions) throws -> DumpConfiguration {
        var configuration = DumpConfiguration(connection: options.connection)
        configuration.databases = options.database.map(DatabasePattern.init)
        if let text = options.dumpOptions {
            guard let words = ShellWords.split(text) else { throw PGKeepError.invalidConfiguration("plugin option dump_opt has an unclosed quote") }
            configuration.dumpOptions = words
        }
        configuration.binDirectory = options.binDirectory
        configuration.abortOnError = options.abortOnError
        configuration.jobs = 1 // Bacula takes one file at a time
        return configuration
    }
}

/// The dump's files as virtual files. A file whose producer fails after its first bytes went out
/// cannot be taken back: it is followed by `<file>.incomplete`, holding the error, which the
/// restore refuses to load past.
final class FrameDumpOutput: DumpOutput, @unchecked Sendable {
    // @unchecked: DumpJob calls write from one thread at a time (jobs = 1); the channel locks.
    let channel: FrameChannel
    let prefix: String

    init(channel: FrameChannel, prefix: String) {
        self.channel = channel
        self.prefix = prefix
    }

    static let incompleteSuffix = ".incomplete"

    func write(_ relativePath: String, _ produce: (ByteStage) throws -> Void) throws -> UInt64 {
        let path = prefix + relativePath
        try channel.send(.file(.init(path: path, size: -1, mode: 0o600, modificationTime: Int64(time(nil)))))
        let stage = FrameFileStage(channel: channel)
        do {
            try produce(stage)
        } catch {
            try channel.send(.end)
            let text = Array("\(path) is incomplete: \(PGKeepError.mapping(error).message)\n".utf8)
            try channel.send(.file(.init(path: path + Self.incompleteSuffix, size: Int64(text.count), mode: 0o600, modificationTime: Int64(time(nil)))))
            try text.withUnsafeBytes { try channel.sendData($0) }
            try channel.send(.end)
            throw error
        }
        try stage.finish()
        return stage.bytes
    }
}

/// A dump-mode restore, as the Bacula PostgreSQL plugin does it:
///
/// - where= empty or "/": each restored database into the database of its name (created from
///   createdb.sql when missing, else its data loaded), roles.sql loaded when selected;
/// - where=newname (a–z, 0–9, _): the one restored database created under that name;
/// - replace=never: a database that exists is refused before anything changes;
/// - where=/dir: the files written under /dir/<service>/, for `pgkeep restore-dump` by hand.
///
/// The files are staged in the state directory while Bacula sends them (pg_restore reads its
/// archive by seeking) and removed when the job ends.
final class DumpRestoreSession {
    let options: PluginOptions
    let request: BackendRequest
    let channel: FrameChannel
    let observer: JobObserver
    let cancellation: CancellationToken
    var logger: Logger { observer.logger }

    init(options: PluginOptions, request: BackendRequest, channel: FrameChannel, observer: JobObserver, cancellation: CancellationToken) {
        self.options = options
        self.request = request
        self.channel = channel
        self.observer = observer
        self.cancellation = cancellation
    }

    enum Target: Equatable {
        case original
        case newName(String)
        case directory(String)
    }

    static func target(where whereDirectory: String) throws -> Target {
        if whereDirectory.isEmpty || whereDirectory == "/" { return .original }
        if whereDirectory.hasPrefix("/") { return .directory(whereDirectory) }
        guard whereDirectory.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }) else {
            throw PGKeepError.invalidConfiguration("where=\(whereDirectory) is neither a directory (/…) nor a database name (a-z, 0-9, _)")
        }
        return .newName(whereDirectory)
    }

    func run() throws {
        let target = try Self.target(where: request.whereDirectory)
        if case .directory(let directory) = target {
            let root = directory + "/" + options.service
            try TargetDirectory.makeDirectories(directory, mode: 0o755)
            try TargetDirectory.makeDirectories(root, mode: 0o700)
            try receiveFiles(channel: channel, where: directory, prefix: options.prefix, into: root)
            try Durability.syncTree(root, method: .fsync)
            channel.message(.info, "the dump's files are in \(root): restore them with pgkeep restore-dump \(root) -d … --database NAME (or --roles)")
            return
        }
        let staging = options.stateDirectory + "/\(options.service).restore-\(request.jobID)-\(getpid())"
        try TargetDirectory.makeDirectories(options.stateDirectory, mode: 0o700)
        try? FileManager.default.removeItem(atPath: staging)
        defer { try? FileManager.default.removeItem(atPath: staging) }
        try TargetDirectory.makeDirectories(staging, mode: 0o700)
        try receiveFiles(channel: channel, where: request.whereDirectory, prefix: options.prefix, into: staging)
        try load(staging, target: target)
    }

    private func load(_ staging: String, target: Target) throws {
        let entries = try directoryEntries(staging).sorted()
        let databases = entries.filter { name in
            access(staging + "/" + name + "/data.sqlc", F_OK) == 0 || access(staging + "/" + name + "/data.sql", F_OK) == 0
        }
        for name in databases {
            let marker = try directoryEntries(staging + "/" + name).first { $0.hasSuffix(FrameDumpOutput.incompleteSuffix) }
            if let marker, let text = try readWholeFile(staging + "/" + name + "/" + marker) {
                throw PGKeepError.verification(String(decoding: text, as: UTF8.self).trimmed
                                               + ": that job's dump of it failed; restore it from another job")
            }
        }
        let roles = entries.contains("roles.sql")
        if case .newName(let newName) = target {
            guard databases.count == 1 else {
                throw PGKeepError.invalidConfiguration("where=\(newName) restores one database under a new name; \(databases.count) were selected (select one database's createdb.sql and data.sqlc)")
            }
        }
        guard !databases.isEmpty || roles else {
            throw PGKeepError.invalidConfiguration("nothing to load: select roles.sql, or a database's createdb.sql and data.sqlc")
        }
        let replace: DumpRestoreJob.Replace? = request.replace == "n" ? .never : nil
        var configuration = DumpRestoreJob.Configuration(dump: staging, connection: options.connection, action: .roles)
        configuration.binDirectory = options.binDirectory
        if roles && target == .original {
            let summary = try DumpRestoreJob(configuration: configuration, observer: observer, cancellation: cancellation).run()
            channel.message(.info, "roles loaded from roles.sql" + (summary.existingRoles.isEmpty ? "" : " (these existed already: \(summary.existingRoles.joined(separator: ", ")))"))
        }
        let names = Dictionary(uniqueKeysWithValues: ((try? decodedNames(staging)) ?? [:]).map { ($0.key, $0.value) })
        var failures: [String] = []
        for directory in databases {
            let name = names[directory] ?? DumpDirectoryName.decode(directory)
            var newName: String?
            if case .newName(let given) = target { newName = given }
            configuration.action = .database(name: name, newName: newName, replace: replace, tables: [], schemaOnly: false, jobs: 1)
            do {
                let summary = try DumpRestoreJob(configuration: configuration, observer: observer, cancellation: cancellation).run()
                let into = newName ?? name
                channel.message(.info, summary.created ? "database \(into) created from createdb.sql and restored" : "database \(into) existed: its data restored into it")
            } catch {
                if options.abortOnError || replace == .never { throw error }
                channel.message(.error, "database \(name): \(BaculaBackend.describe(PGKeepError.mapping(error)))")
                failures.append(name)
            }
        }
        if !failures.isEmpty {
            throw PGKeepError(.toolFailed, "\(failures.count) of \(databases.count) database(s) were not restored: \(failures.joined(separator: ", "))")
        }
    }

    /// databases.json's directory → name (when it was restored too).
    private func decodedNames(_ staging: String) throws -> [String: String] {
        guard let bytes = try readWholeFile(staging + "/databases.json") else { return [:] }
        let entries = try JSONDecoder().decode([[String: String]].self, from: Data(bytes))
        return Dictionary(entries.compactMap { entry in entry["directory"].flatMap { d in entry["name"].map { (d, $0) } } }, uniquingKeysWith: { $1 })
    }
}
