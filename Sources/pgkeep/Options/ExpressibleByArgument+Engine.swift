import ArgumentParser
import Codecs
import Dump
import PGKeep
import PGWire
import Repository
import Sinks

extension BackupConfiguration.Format: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "p", "plain": self = .plain
        case "t", "tar": self = .tar
        default: return nil
        }
    }
}

extension BackupConfiguration.WALMethod: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "s", "stream": self = .stream
        case "f", "fetch": self = .fetch
        case "n", "none": self = .none
        default: return nil
        }
    }
}

extension BaseBackupOptions.Checkpoint: ExpressibleByArgument {}
extension Durability.Method: ExpressibleByArgument {}

extension BaseBackupOptions.ManifestChecksums: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.uppercased().replacing("-", with: "")) }
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

extension BackupRecord.Level: ExpressibleByArgument {}

extension DumpConfiguration.Format: ExpressibleByArgument {}
extension DumpRestoreJob.Replace: ExpressibleByArgument {}
