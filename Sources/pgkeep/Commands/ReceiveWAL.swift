import ArgumentParser
import Codecs
import Logging
import PGConnection
import PGKeep
import PGWire

struct ReceiveWAL: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receive-wal",
        abstract: "Archive a server's WAL continuously into a directory (like pg_receivewal).",
        discussion: """
            Streams WAL over the replication protocol into the directory, one file per segment. \
            A segment being received is NAME.partial; once full it is fsynced and renamed to NAME \
            (or compressed to NAME.zst, .lz4, .gz), and only then reported flushed to the server. \
            With a base backup, this archive is what point-in-time recovery replays.

            On start, pgkeep resumes where the archive ends (the newest segment or .partial), or \
            else where the slot stands, or else at the server's current segment. It follows \
            timeline switches (writing the .history files), reconnects with backoff when the \
            server goes away, and stops cleanly on SIGINT or SIGTERM. The directory remembers \
            which cluster it archives: another cluster's server is refused.

            Use a replication slot so the server keeps WAL while the archiver is down:
              pgkeep receive-wal -d 'host=db1 user=backup' --slot archiver --create-slot
              pgkeep receive-wal -d 'host=db1 user=backup' --slot archiver -D /archive/db1

            As a synchronous standby (its application_name, pgkeep_receivewal unless set, goes \
            into the server's synchronous_standby_names):
              pgkeep receive-wal -d 'host=db1 application_name=archiver' --slot archiver \\
                -D /archive/db1 --synchronous

            Exit status: 0 after a clean stop (SIGINT, SIGTERM, --endpos); 1 when archiving \
            cannot go on (full disk, another cluster's archive, WAL the server no longer has); \
            2 for usage errors; 3 when the server stays out of reach (--no-loop, \
            --reconnect-attempts).
            """)

    @OptionGroup(title: "Connection") var connection: ConnectionOptions

    @Option(name: [.customShort("D"), .customLong("directory")],
            help: ArgumentHelp("Archive directory (created if missing).", valueName: "directory"))
    var directory: String?

    @Option(name: [.customShort("S"), .long], help: "Replication slot to stream from (strongly advised).")
    var slot: String?

    @Flag(name: .customLong("create-slot"), help: "Create the --slot (physical, reserving WAL from now) and exit.")
    var createSlot = false

    @Flag(name: .customLong("if-not-exists"), help: "With --create-slot: an existing slot is not an error.")
    var ifNotExists = false

    @Flag(name: .customLong("drop-slot"), help: "Drop the --slot and exit.")
    var dropSlot = false

    @Flag(name: .long, help: "Fsync after every write and report it flushed at once (for a synchronous standby).")
    var synchronous = false

    @Option(name: [.customShort("Z"), .long], help: ArgumentHelp(
        "Compress each completed segment: gzip|lz4|zstd[:LEVEL or level=N,workers=N], or none. zstd compresses a segment as it arrives, on every online processor unless workers=N says otherwise (workers=0: on the receiving thread); with no level named, at level 3 except random-looking 1 MiB pieces that level 1 compresses as well. Partial segments stay uncompressed.",
        valueName: "method"))
    var compress: String?

    @Option(name: [.customShort("s"), .customLong("status-interval")], help: ArgumentHelp(
        "Seconds between status reports to the server (also sent on every completed segment).", valueName: "seconds"))
    var statusInterval: Int = 10

    @Option(name: [.customShort("E"), .customLong("endpos")], help: ArgumentHelp(
        "Stop once WAL up to this position (e.g. 0/5000000) is received.", valueName: "lsn"))
    var endPosition: String?

    @Flag(name: [.customShort("n"), .customLong("no-loop")], help: "Exit when the connection is lost instead of reconnecting.")
    var noLoop = false

    @Option(name: .customLong("reconnect-attempts"), help: ArgumentHelp(
        "Give up after this many failed reconnections in a row (default: never).", valueName: "count"))
    var reconnectAttempts: Int?

    @Option(name: .customLong("reconnect-max-delay"), help: ArgumentHelp(
        "Longest wait between reconnection attempts; waits double from 1 s up to it.", valueName: "seconds"))
    var reconnectMaxDelay: Double = 30

    @Option(name: .customLong("metrics-addr"), help: ArgumentHelp(
        "Serve Prometheus metrics (positions, lag, segments, reconnects) over HTTP at this address.", valueName: "host:port"))
    var metricsAddress: String?

    @Flag(name: .long, help: "Log as JSON lines (time, level, message, fields) on stderr.")
    var json = false

    @Flag(name: .customLong("no-sync"), help: "Do not fsync (unsafe: a crash can lose archived WAL; for tests).")
    var noSync = false

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if connection.noPassword && connection.promptPassword { throw ValidationError("-w and -W contradict each other") }
        if let slot, SlotName(slot) == nil {
            throw ValidationError("slot name '\(slot)' is invalid: use lower-case letters, digits and underscores (at most 63)")
        }
        if (createSlot || dropSlot) && slot == nil { throw ValidationError("--create-slot and --drop-slot need --slot NAME") }
        if createSlot && dropSlot { throw ValidationError("--create-slot and --drop-slot contradict each other") }
        if ifNotExists && !createSlot { throw ValidationError("--if-not-exists goes with --create-slot") }
        if !createSlot && !dropSlot && directory == nil { throw ValidationError("give the archive directory with -D DIRECTORY") }
        if synchronous && noSync { throw ValidationError("--synchronous and --no-sync contradict each other: a synchronous standby reports only what is on disk") }
        if let compress { _ = try compression(compress) }
        if let endPosition, LSN(endPosition) == nil { throw ValidationError("--endpos '\(endPosition)' is not a WAL position like 0/5000000") }
        guard statusInterval >= 1 else { throw ValidationError("--status-interval must be at least 1 second") }
        if let reconnectAttempts, reconnectAttempts < 0 { throw ValidationError("--reconnect-attempts cannot be negative") }
        guard reconnectMaxDelay >= 1 else { throw ValidationError("--reconnect-max-delay must be at least 1 second") }
    }

    func run() throws {
        let logger = logging.makeLogger(quietest: .notice, json: json)
        var parameters = connection.parameters
        parameters.applicationName = "pgkeep_receivewal"
        if connection.promptPassword { parameters.password = try readPassword() }
        do {
            if let slot = slot.flatMap(SlotName.init), createSlot || dropSlot {
                if createSlot { try ReplicationSlots.create(slot, connection: parameters, ifNotExists: ifNotExists, logger: logger) }
                if dropSlot { try ReplicationSlots.drop(slot, connection: parameters, logger: logger) }
                return
            }
            var configuration = ReceiveWALConfiguration(connection: parameters, archiveDirectory: absolute(directory!))
            configuration.slot = slot.flatMap(SlotName.init)
            configuration.compression = try compress.flatMap(compression)
            configuration.synchronous = synchronous
            configuration.statusIntervalSeconds = statusInterval
            configuration.endPosition = endPosition.flatMap { LSN($0) }
            configuration.reconnect = noLoop ? nil : ReconnectPolicy(maxDelaySeconds: reconnectMaxDelay, maxAttempts: reconnectAttempts)
            configuration.sync = !noSync
            let metrics = ArchiverMetrics()
            cancelJobOnSignals()
            let archiver = try WALArchiver(configuration: configuration, observer: JobObserver(logger: logger),
                                           cancellation: processCancellation, metrics: metrics)
            if let metricsAddress, !metricsAddress.isEmpty { // "" (an empty setting in a service's config): none
                do {
                    let server = try MetricsServer(address: metricsAddress, metrics: metrics)
                    logger.info("serving Prometheus metrics over HTTP on port \(server.port)")
                } catch { throw PGKeepError.invalidConfiguration("\(error)") }
            }
            let summary = try archiver.run()
            logger.notice("\(summary.reason): \(summary.segmentsArchived) segment(s) archived, WAL durable up to \(summary.position)")
        } catch let error as PGKeepError {
            logger.error("\(error)")
            throw ExitCode(error.exitCode)
        }
    }

    /// Per-segment compression: client-side only (`WALArchiveWriter` compresses each segment as
    /// it arrives, zstd on kept worker threads).
    private func compression(_ text: String) throws -> CompressionSpec? {
        let spec: CompressionSpec?
        do { spec = try CompressionSpec.parse(text) } catch { throw ValidationError("--compress: \(error)") }
        guard let spec else { return nil }
        if spec.location == .server { throw ValidationError("--compress: receive-wal compresses on this side; drop 'server-'") }
        return spec
    }
}
