/// The 512-byte ustar header: decoding what the server sent, encoding what we write.
/// PostgreSQL writes ustar only (no pax, no GNU long names), names ≤ 99 bytes, and sizes of
/// 8 GiB and more in base-256.
public enum TarHeader {
    public static let blockSize = 512

    // Field offsets and lengths (POSIX ustar).
    private static let name = 0..<100, mode = 100..<108, uid = 108..<116, gid = 116..<124
    private static let size = 124..<136, mtime = 136..<148, checksum = 148..<156
    private static let typeflag = 156, linkname = 157..<257, magic = 257..<263, version = 263..<265
    private static let uname = 265..<297, gname = 297..<329, prefix = 345..<500

    /// True when all 512 bytes are zero: an end-of-archive block.
    public static func isZeroBlock(_ block: UnsafeRawBufferPointer) -> Bool {
        // Word-wise: this runs once per member, but cheaply.
        let words = block.count / 8
        for index in 0..<words where block.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self) != 0 { return false }
        return true
    }

    /// Decodes a header block. `offset` (of the block in the stream) is for error messages.
    public static func decode(_ block: UnsafeRawBufferPointer, offset: UInt64) throws(TarError) -> TarMember {
        precondition(block.count == blockSize)
        guard let stored = octal(block, checksum) else { throw .badNumericField(field: "checksum", offset: offset) }
        var unsignedSum: UInt64 = 0
        var signedSum: Int64 = 0
        for index in 0..<blockSize {
            let byte = checksum.contains(index) ? UInt8(ascii: " ") : block[index]
            unsignedSum += UInt64(byte)
            signedSum += Int64(Int8(bitPattern: byte))
        }
        guard stored == unsignedSum || Int64(bitPattern: stored) == signedSum else { throw .badChecksum(offset: offset) }
        guard block[magic].starts(with: "ustar".utf8) else { throw .notUstar(offset: offset) }

        var rawName = cString(block, name)
        let rawPrefix = cString(block, prefix)
        if !rawPrefix.isEmpty { rawName = rawPrefix + [UInt8(ascii: "/")] + rawName }
        let display = String(decoding: rawName, as: UTF8.self)
        guard let size = numeric(block, size) else { throw .badNumericField(field: "size", offset: offset) }
        guard let mode = octal(block, mode), mode <= 0o7777 else { throw .badNumericField(field: "mode", offset: offset) }
        let mtime = numeric(block, mtime) ?? 0

        let kind: TarMember.Kind
        switch block[typeflag] {
        case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): kind = .file
        case UInt8(ascii: "5"): kind = .directory
        case UInt8(ascii: "2"): kind = .symlink(target: cString(block, linkname))
        case let other: throw .unsupportedMemberType(other, path: display)
        }
        if kind != .file, size != 0 { throw .unexpectedContents(path: display) }
        let path = try ArchivePath(validating: rawName)
        return TarMember(path: path, kind: kind, size: size, mode: UInt32(mode), modificationTime: Int64(bitPattern: mtime))
    }

    /// Encodes a ustar header the way PostgreSQL does (uname/gname left empty).
    public static func encode(_ member: TarMember, into block: UnsafeMutableRawBufferPointer) {
        precondition(block.count == blockSize)
        block.initializeMemory(as: UInt8.self, repeating: 0)
        var pathBytes = member.path.bytes
        if member.kind == .directory { pathBytes.append(UInt8(ascii: "/")) }
        if pathBytes.count <= 100 {
            put(pathBytes, into: block, name)
        } else if let split = pathBytes[..<min(pathBytes.count, 156)].lastIndex(of: UInt8(ascii: "/")),
                  pathBytes.count - split - 1 <= 100 {
            put(Array(pathBytes[..<split]), into: block, prefix)
            put(Array(pathBytes[(split + 1)...]), into: block, name)
        } else {
            preconditionFailure("path too long for a ustar header: \(member.path)")
        }
        putOctal(UInt64(member.mode), into: block, mode)
        putOctal(0, into: block, uid)
        putOctal(0, into: block, gid)
        putNumeric(member.kind == .file ? member.size : 0, into: block, size)
        putNumeric(UInt64(bitPattern: member.modificationTime), into: block, mtime)
        switch member.kind {
        case .file: block[typeflag] = UInt8(ascii: "0")
        case .directory: block[typeflag] = UInt8(ascii: "5")
        case .symlink(let target):
            block[typeflag] = UInt8(ascii: "2")
            put(target, into: block, linkname)
        }
        put(Array("ustar\0".utf8), into: block, magic)
        put(Array("00".utf8), into: block, version)
        // Checksum: computed with its own field as spaces, stored as 6 octal digits, NUL, space.
        put(Array("        ".utf8), into: block, checksum)
        let sum = block.reduce(UInt64(0)) { $0 + UInt64($1) }
        putOctal(sum, into: block, checksum.lowerBound..<checksum.lowerBound + 7)
        block[checksum.upperBound - 1] = UInt8(ascii: " ")
    }

    // MARK: Fields

    private static func cString(_ block: UnsafeRawBufferPointer, _ range: Range<Int>) -> [UInt8] {
        let field = block[range]
        return Array(field[..<(field.firstIndex(of: 0) ?? field.endIndex)])
    }

    /// Octal digits, optionally padded with spaces or NULs on either side.
    private static func octal(_ block: UnsafeRawBufferPointer, _ range: Range<Int>) -> UInt64? {
        var value: UInt64 = 0
        var sawDigit = false, ended = false
        for byte in block[range] {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                if ended { return nil }
                let (shifted, overflow) = value.multipliedReportingOverflow(by: 8)
                if overflow { return nil }
                value = shifted + UInt64(byte - UInt8(ascii: "0"))
                sawDigit = true
            case UInt8(ascii: " "), 0:
                if sawDigit { ended = true }
            default:
                return nil
            }
        }
        return sawDigit ? value : 0
    }

    /// Octal, or base-256 (GNU/star; high bit of the first byte set) for values octal cannot hold.
    private static func numeric(_ block: UnsafeRawBufferPointer, _ range: Range<Int>) -> UInt64? {
        let first = block[range.lowerBound]
        guard first & 0x80 != 0 else { return octal(block, range) }
        guard first & 0x40 == 0 else { return nil } // negative: never valid for size
        var value = UInt64(first & 0x3F)
        for byte in block[(range.lowerBound + 1)..<range.upperBound] {
            guard value >> 56 == 0 else { return nil }
            value = value << 8 | UInt64(byte)
        }
        return value
    }

    private static func put(_ bytes: [UInt8], into block: UnsafeMutableRawBufferPointer, _ range: Range<Int>) {
        precondition(bytes.count <= range.count)
        for (index, byte) in bytes.enumerated() { block[range.lowerBound + index] = byte }
    }

    /// Zero-padded octal digits filling the field but its last byte (a NUL).
    private static func putOctal(_ value: UInt64, into block: UnsafeMutableRawBufferPointer, _ range: Range<Int>) {
        var digits = Array(String(value, radix: 8).utf8)
        let width = range.count - 1
        precondition(digits.count <= width)
        digits.insert(contentsOf: repeatElement(UInt8(ascii: "0"), count: width - digits.count), at: 0)
        put(digits, into: block, range)
    }

    private static func putNumeric(_ value: UInt64, into block: UnsafeMutableRawBufferPointer, _ range: Range<Int>) {
        let octalLimit: UInt64 = 1 << (3 * UInt64(range.count - 1))
        if value < octalLimit { return putOctal(value, into: block, range) }
        var remaining = value
        for index in stride(from: range.upperBound - 1, to: range.lowerBound, by: -1) {
            block[index] = UInt8(truncatingIfNeeded: remaining)
            remaining >>= 8
        }
        block[range.lowerBound] = 0x80
    }
}
