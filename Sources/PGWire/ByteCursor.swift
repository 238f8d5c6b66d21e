/// Reads big-endian integers and C strings from a borrowed buffer, NIO-style: `read…` advances,
/// `peek…` does not, and short input gives nil rather than a trap. The buffer must outlive the cursor.
public struct ByteCursor {
    public let buffer: UnsafeRawBufferPointer
    public private(set) var readerIndex: Int = 0

    public init(_ buffer: UnsafeRawBufferPointer) { self.buffer = buffer }

    public var readableBytes: Int { buffer.count - readerIndex }

    public func peekByte() -> UInt8? { readableBytes >= 1 ? buffer[readerIndex] : nil }

    public mutating func readByte() -> UInt8? {
        guard let byte = peekByte() else { return nil }
        readerIndex += 1
        return byte
    }

    public mutating func readInteger<T: FixedWidthInteger>(as: T.Type = T.self) -> T? {
        let size = MemoryLayout<T>.size
        guard readableBytes >= size else { return nil }
        var value = T.zero
        withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[readerIndex..<readerIndex + size])) }
        readerIndex += size
        return T(bigEndian: value)
    }

    /// A view of the next `length` bytes (no copy).
    public mutating func readSlice(length: Int) -> UnsafeRawBufferPointer? {
        guard length >= 0, readableBytes >= length else { return nil }
        defer { readerIndex += length }
        return UnsafeRawBufferPointer(rebasing: buffer[readerIndex..<readerIndex + length])
    }

    /// The rest of the buffer (no copy).
    public mutating func readRemaining() -> UnsafeRawBufferPointer {
        readSlice(length: readableBytes)!
    }

    /// A NUL-terminated string, decoded as UTF-8 (invalid sequences repaired); nil without a NUL.
    public mutating func readNullTerminatedString() -> String? {
        guard let end = buffer[readerIndex...].firstIndex(of: 0) else { return nil }
        let string = String(decoding: UnsafeRawBufferPointer(rebasing: buffer[readerIndex..<end]), as: UTF8.self)
        readerIndex = end + 1
        return string
    }
}

/// Appends big-endian integers to a byte array (for the few small messages the client sends).
extension Array where Element == UInt8 {
    public mutating func appendInteger<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }
}
