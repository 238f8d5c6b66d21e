import Foundation
import Logging
import Synchronization
import Testing
import PGConnection
import PGKeep
import TestSupport

/// The engine as a library: jobs in one process, each with its own observer and cancellation
/// token, never seeing each other's state; nothing printed.
@Suite("the engine as a library", .serialized)
struct EngineLibraryTests {
    final class Events: @unchecked Sendable {
        // @unchecked: guarded by the mutex.
        let lock = Mutex<[String]>([])
        func add(_ text: String) { lock.withLock { $0.append(text) } }
        var all: [String] { lock.withLock { $0 } }
    }

    struct Collecting: LogHandler {
        let events: Events
        var logLevel: Logger.Level = .info
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) { events.add("\(event.level): \(event.message)") }
    }

    @Test("two backups at once in one process: cancelling one leaves the other complete")
    func twoJobsOneProcess() throws {
        let source = try SourceCluster(major: 16, scale: 1)
        defer { source.cluster.destroy() }
        let cluster = source.cluster
        func configuration(_ name: String) -> BackupConfiguration {
            var configuration = BackupConfiguration(
                connection: ConnectionParameters(host: cluster.socketDirectory, port: String(cluster.port), user: "postgres"),
                targetDirectory: cluster.root + "/" + name)
            configuration.tablespaceMapping = try! { var m = TablespaceMapping(); try m.add("\(source.tablespace)=\(cluster.root)/ts-\(name)"); return m }()
            configuration.checkpoint = .fast
            configuration.showProgress = true
            configuration.maxRateKBps = name == "cancelled" ? 1024 : nil
            return configuration
        }
        let keptEvents = Events(), cancelledEvents = Events()
        let keptProgress = Mutex(0), cancelledProgress = Mutex(0)
        let keptToken = CancellationToken(), cancelledToken = CancellationToken()
        let kept = BackupJob(configuration: configuration("kept"),
                             observer: JobObserver(logger: Logger(label: "kept") { _ in Collecting(events: keptEvents) }) { _ in keptProgress.withLock { $0 += 1 } },
                             cancellation: keptToken)
        let cancelled = BackupJob(configuration: configuration("cancelled"),
                                  observer: JobObserver(logger: Logger(label: "cancelled") { _ in Collecting(events: cancelledEvents) }) { _ in cancelledProgress.withLock { $0 += 1 } },
                                  cancellation: cancelledToken)
        let results = Mutex<[String: Result<BackupSummary, PGKeepError>]>([:])
        let group = DispatchGroup()
        for (name, job) in [("kept", kept), ("cancelled", cancelled)] {
            nonisolated(unsafe) let job = job
            group.enter()
            Thread {
                let result = Result { () throws(PGKeepError) in try job.run() }
                results.withLock { $0[name] = result }
                group.leave()
            }.start()
        }
        // Cancel the rate-limited one once it has started receiving.
        for _ in 0..<200 where cancelledProgress.withLock({ $0 }) == 0 { usleep(50_000) }
        cancelledToken.cancel()
        #expect(group.wait(timeout: .now() + 240) == .success)

        let outcome = results.withLock { $0 }
        guard case .success(let summary)? = outcome["kept"] else { Issue.record("the other job failed: \(String(describing: outcome["kept"]))"); return }
        #expect(FileManager.default.fileExists(atPath: summary.directory + "/backup_manifest"))
        #expect(!keptToken.isCancelled)
        let verified = try verifyBackup(cluster.installation, summary.directory)
        #expect(verified.succeeded, "\(verified.output)")
        guard case .failure(let error)? = outcome["cancelled"] else { Issue.record("the cancelled job did not fail"); return }
        #expect(error.code == .cancelled, "\(error) \(cancelledEvents.all)")
        #expect(!FileManager.default.fileExists(atPath: cluster.root + "/cancelled"), "the cancelled job removed what it wrote")
        #expect(keptProgress.withLock { $0 } > 0 && cancelledProgress.withLock { $0 } > 0, "each observer heard its own job")
        #expect(!keptEvents.all.contains { $0.contains("removed the incomplete backup") })
        #expect(cancelledEvents.all.contains { $0.contains("removed the incomplete backup") })
    }
}
