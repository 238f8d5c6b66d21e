import ArgumentParser
import FoundationEssentials
import Glibc

/// A path made absolute against the working directory (jobs may change nothing, but messages
/// and lock files should name the real place).
func absolute(_ path: String) -> String {
    guard !path.hasPrefix("/") else { return path }
    // getcwd, not FileManager: in receive-wal's start-up this was the only call into Foundation's
    // file manager, which sets up its state for it.
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    guard getcwd(&buffer, buffer.count) != nil else { return path }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/" + path
}

func readPassword() throws -> String {
    guard let entered = getpass("Password: ") else { throw ValidationError("could not read a password") }
    return String(cString: entered)
}

/// One line to standard error, unbuffered (print's standard output may be a pipe or the archive).
func printError(_ line: String) {
    var bytes = Array((line.hasSuffix("\n") ? line : line + "\n").utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { return }
        bytes = bytes.dropFirst(written)
    }
}

/// `--json` output: the value as indented JSON with sorted keys (stable for scripts and diffs).
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
