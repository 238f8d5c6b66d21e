import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Debian's real Bacula 9.6 daemons on loopback (tools/bacula-lab.sh), driven with bconsole.
final class BaculaLab {
    let root: String
    static var script: String { (Fixtures.directory as NSString).deletingLastPathComponent + "/tools/bacula-lab.sh" }

    /// Whether this machine has Bacula's daemons (tools/test.sh installs them).
    static var isInstalled: Bool {
        ["/usr/sbin/bacula-dir", "/usr/sbin/bacula-sd", "/usr/sbin/bacula-fd", "/usr/sbin/bconsole", "/usr/bin/bconsole"]
            .filter { FileManager.default.isExecutableFile(atPath: $0) }.count >= 4
    }

    /// Starts a lab under `root` with these FileSets and Jobs (Client lab-fd, Storage File, Pool
    /// Default, Messages Standard).
    init(root: String, jobs: String) throws {
        self.root = root
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let jobsFile = root + "/jobs.in.conf"
        try jobs.write(toFile: jobsFile, atomically: true, encoding: .utf8)
        try Shell.check([Self.script, "start", root, jobsFile], environment: ["PGKEEP": PGKeepBinary.path])
    }

    func stop() { _ = try? Shell.run([Self.script, "stop", root]) }

    /// bconsole with these commands; its whole output.
    @discardableResult
    func console(_ commands: String, timeout: TimeInterval = 900) throws -> String {
        let file = root + "/commands-\(UUID().uuidString.prefix(8))"
        try (commands + "\nquit\n").write(toFile: file, atomically: true, encoding: .utf8)
        defer { unlink(file) }
        let result = try Shell.run(["/bin/sh", "-c", "bconsole -c '\(root)/bconsole.conf' < '\(file)'"], timeout: timeout)
        guard result.succeeded else { throw TestFailure("bconsole failed: \(result.output)") }
        return result.stdout
    }

    struct Outcome: CustomStringConvertible {
        var jobID: Int
        /// Catalog JobStatus: T (OK, with or without warnings), E, f (fatal), A (cancelled).
        var status: String
        var errors: Int
        var files: Int
        var bytes: Int
        /// The job's lines of the Director's log.
        var log: String
        /// The Termination line: "Backup OK", "Backup OK -- with warnings", "*** Backup Error ***".
        var termination: String
        var ok: Bool { status == "T" && errors == 0 }
        var description: String { "job \(jobID): \(status) errors=\(errors) files=\(files) \(termination)\n\(log)" }
    }

    /// Runs a backup job at a level and waits for it.
    func backup(_ job: String, level: String) throws -> Outcome {
        let output = try console("run job=\(job) level=\(level) yes\nwait")
        return try outcome(of: try Self.queuedJobID(output))
    }

    /// `estimate job=… level=… listing`: its output.
    func estimate(_ job: String, level: String) throws -> String {
        try console("estimate job=\(job) level=\(level) listing")
    }

    /// Restores the newest state of `fileset` (select current all), with these where/replace settings.
    func restore(fileset: String, whereDirectory: String, replace: String = "always", jobIDs: [Int]? = nil) throws -> Outcome {
        let selection = jobIDs.map { "jobid=\($0.map(String.init).joined(separator: ","))" } ?? "fileset=\(fileset) select current"
        let output = try console("restore client=lab-fd \(selection) where=\"\(whereDirectory)\" replace=\(replace) all done yes\nwait")
        return try outcome(of: try Self.queuedJobID(output))
    }

    static func queuedJobID(_ output: String) throws -> Int {
        guard let range = output.range(of: "Job queued. JobId="),
              let id = Int(output[range.upperBound...].prefix(while: { $0.isNumber })) else {
            throw TestFailure("no job was queued:\n\(output)")
        }
        return id
    }

    func outcome(of jobID: Int) throws -> Outcome {
        let listing = try console("wait jobid=\(jobID)\nllist jobid=\(jobID)")
        func field(_ name: String) -> String {
            for line in listing.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name {
                    return parts[1].trimmingCharacters(in: .whitespaces)
                }
            }
            return ""
        }
        let log = jobLog(jobID)
        let termination = log.split(separator: "\n").last { $0.contains("Termination:") }
            .map { String($0.split(separator: ":", maxSplits: 1)[1]).trimmingCharacters(in: .whitespaces) } ?? ""
        return Outcome(jobID: jobID, status: field("JobStatus"), errors: Int(field("JobErrors")) ?? -1,
                       files: Int(field("JobFiles").replacingOccurrences(of: ",", with: "")) ?? -1,
                       bytes: Int(field("JobBytes").replacingOccurrences(of: ",", with: "")) ?? -1, log: log, termination: termination)
    }

    /// The Director log's lines for one job (its messages and its report).
    func jobLog(_ jobID: Int) -> String {
        let text = (try? String(contentsOfFile: root + "/dir/log", encoding: .utf8)) ?? ""
        var lines: [Substring] = []
        var inReport = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.contains(" JobId \(jobID): ") {
                lines.append(line)
                inReport = true
            } else if line.hasPrefix(" ") && inReport {
                lines.append(line)
            } else {
                inReport = false
            }
        }
        return lines.joined(separator: "\n")
    }
}
