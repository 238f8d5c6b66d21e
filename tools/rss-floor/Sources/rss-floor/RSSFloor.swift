// Parses its command line, makes a logger, asks libpq its version and prints it: see Package.swift.
import ArgumentParser
import CLibPQ
import Logging

@main
struct RSSFloor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rss-floor",
        abstract: "Print libpq's version, as a Swift program on pgkeep's dependencies that does nothing else.")

    @Option(name: .long, help: "Log level (trace, debug, info, ...).")
    var logLevel: String = "info"

    func run() throws {
        var logger = Logger(label: "rss-floor")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        logger.debug("asking libpq its version")
        print("rss-floor: libpq \(PQlibVersion())")
    }
}
