import ArgumentParser
import Foundation

/// A path made absolute against the working directory (jobs may change nothing, but messages
/// and lock files should name the real place).
func absolute(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}

func readPassword() throws -> String {
    guard let entered = getpass("Password: ") else { throw ValidationError("could not read a password") }
    return String(cString: entered)
}
