#if canImport(Glibc)
import Glibc
#endif
import Dump
import Logging
import PGKeep
import PluginFrames

/// What pgkeep-fd.so asks of its backend: the job's kind and level, and the FileSet's plugin string.
public struct BackendRequest: Sendable {
    public enum Mode: String, Sendable, CaseIterable { case backup, estimate, restore }

    public var mode: Mode
    /// Bacula's level: F, I, D (anything else is taken as F).
    public var level: Character
    /// The time of the job this one's level is based on (seconds since 1970; 0 for a Full).
    public var since: Int64 = 0
    public var jobID: Int = 0
    public var jobName: String = ""
    public var accurate = false
    /// The restore's where= ("" or "/" for the original place).
    public var whereDirectory: String = ""
    /// The restore's replace= ('a' always, 'w' if newer, 'o' if older, 'n' never).
    public var replace: Character = "a"
    /// The FileSet's plugin string.
    public var command: String

    public init(mode: Mode, level: Character, command: String) {
        self.mode = mode
        self.level = level
        self.command = command
    }
}

/// `pgkeep bacula backend`: one plugin job, from its first frame to `done`. Every failure ends in
/// a fatal message (the plugin turns it into M_FATAL: the job fails, never "OK -- with
/// warnings") and `done(ok: false)`.
public final class BaculaBackend {
    let request: BackendRequest
    let channel: FrameChannel
    /// The pgkeep program, for the restore_command a restored data directory gets.
    let executable: String
    let cancellation: CancellationToken

    public init(request: BackendRequest, channel: FrameChannel, executable: String, cancellation: CancellationToken) {
        self.request = request
        self.channel = channel
        self.executable = executable
        self.cancellation = cancellation
    }

    /// Runs the job; true when it went well.
    public func run() -> Bool {
        let logger = Logger(label: "pgkeep.bacula") { _ in FrameLogHandler(channel: self.channel) }
        let observer = JobObserver(logger: logger)
        var ok = true
        do {
            let options = try PluginOptions.parse(request.command)
            switch (options.mode, request.mode) {
            case (.pitr, .backup):
                try PITRBackupSession(options: options, level: request.level, channel: channel, observer: observer,
                                      cancellation: cancellation).run()
            case (.pitr, .estimate):
                try EstimateSession(options: options, level: request.level, channel: channel, logger: logger).pitr()
            case (.pitr, .restore):
                try PITRRestoreSession(options: options, where: request.whereDirectory, channel: channel, logger: logger,
                                       executable: executable).run()
            case (.dump, .backup):
                ok = try DumpBackupSession(options: options, level: request.level, channel: channel, observer: observer,
                                           cancellation: cancellation).run()
            case (.dump, .estimate):
                try EstimateSession(options: options, level: request.level, channel: channel, logger: logger).dump()
            case (.dump, .restore):
                try DumpRestoreSession(options: options, request: request, channel: channel, observer: observer,
                                       cancellation: cancellation).run()
            }
        } catch let error as PluginOptions.Invalid {
            channel.message(.fatal, error.description)
            ok = false
        } catch {
            var mapped = PGKeepError.mapping(error)
            // The seed plugin's words, which monitoring already looks for.
            if mapped.whileConnecting, !mapped.message.hasPrefix(DumpJob.unreachable) {
                mapped.message = DumpJob.unreachable + " " + mapped.message
            }
            channel.message(.fatal, Self.describe(mapped))
            ok = false
        }
        do {
            try channel.send(.done(ok: ok))
            try channel.flush()
        } catch {
            return false
        }
        return ok
    }

    /// One line for the job log: the message, the server's detail and the hint.
    static func describe(_ error: PGKeepError) -> String {
        var text = error.message
        if let detail = error.server?.detail, !detail.isEmpty { text += " (\(detail))" }
        if let hint = error.hint, !hint.isEmpty { text += "; \(hint)" }
        return text
    }
}

/// The backend's log into Bacula's job log: notices as information, warnings and errors as
/// such. Debug and info lines stay out of the job log (the plugin has no other stderr).
struct FrameLogHandler: LogHandler {
    let channel: FrameChannel
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .notice

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let severity: Frame.Severity
        switch event.level {
        case .trace, .debug, .info, .notice: severity = .info
        case .warning: severity = .warning
        case .error, .critical: severity = .error
        }
        channel.message(severity, event.message.description)
    }
}
