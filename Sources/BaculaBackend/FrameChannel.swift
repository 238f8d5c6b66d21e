#if canImport(Glibc)
import Glibc
#endif
import ArchiveStream
import PGKeep
import PluginFrames
import Sinks

/// The backend's side of the pipe to pgkeep-fd.so: frames out (buffered into large writes; a
/// file's data is cut into chunks the plugin hands to Bacula), frames in.
public final class FrameChannel: @unchecked Sendable {
    // @unchecked: the backend's one job thread writes; log lines from other threads go through
    // `message`, which takes the lock.
    private let output: FileDescriptor
    private let input: Int32
    private var buffer: [UInt8] = []
    /// What the plugin sent, read straight into it: one buffer for the restore's whole stream.
    private var inbound = FrameBuffer()
    private let lock = NSLockLike()

    /// Data frames carry at most this much (Bacula reads 64 KiB at a time).
    static let chunk = 64 << 10

    public init(input: Int32 = STDIN_FILENO, output: Int32 = STDOUT_FILENO) {
        self.input = input
        self.output = FileDescriptor(raw: output, path: "the plugin", owned: false)
        buffer.reserveCapacity(256 << 10)
    }

    public func send(_ frame: Frame) throws {
        try lock.withLock {
            buffer.append(contentsOf: frame.encoded())
            if buffer.count >= 128 << 10 { try flushLocked() }
        }
    }

    /// File contents, cut into data frames.
    public func sendData(_ bytes: UnsafeRawBufferPointer) throws {
        try lock.withLock {
            var offset = 0
            while offset < bytes.count {
                let take = min(Self.chunk, bytes.count - offset)
                buffer.append(contentsOf: Frame.header(.data, length: take))
                buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + take]))
                offset += take
                if buffer.count >= 128 << 10 { try flushLocked() }
            }
        }
    }

    public func flush() throws { try lock.withLock { try flushLocked() } }

    private func flushLocked() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try output.writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    /// A message to the job log (any thread).
    public func message(_ severity: Frame.Severity, _ text: String) {
        try? send(.message(severity, text))
        try? flush()
    }

    /// The next frame from the plugin other than data; nil at the end of the stream. The data
    /// frames on the way go to `data` as they arrive, lent from the read buffer (no copy, no
    /// allocation per frame).
    public func receive(data: (UnsafeRawBufferPointer) throws -> Void) throws -> Frame? {
        while true {
            if let frame = try inbound.next(data: data) { return frame }
            let count = inbound.fill { read(input, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                if count < 0 { throw FileSystemError("read from", "the plugin") }
                return nil
            }
        }
    }
}

import Synchronization

/// A mutex around a closure, for the channel's buffer.
final class NSLockLike: Sendable {
    private let mutex = Mutex(())
    func withLock<T>(_ body: () throws -> T) throws -> T { try mutex.withLock { _ in try body() } }
}

/// A file's bytes as they go to the plugin: a byte stage that sends data frames; `finish` ends the file.
final class FrameFileStage: ByteStage {
    private let channel: FrameChannel
    private(set) var bytes: UInt64 = 0
    init(channel: FrameChannel) { self.channel = channel }
    func consume(_ chunk: UnsafeRawBufferPointer) throws {
        try channel.sendData(chunk)
        bytes += UInt64(chunk.count)
    }
    func finish() throws { try channel.send(.end) }
}
