import CLibCrypto
import CPGKeepShims

/// The checksum algorithms a backup manifest may name, as PostgreSQL spells them.
public enum ChecksumAlgorithm: String, Sendable, CaseIterable {
    case none = "NONE", crc32c = "CRC32C", sha224 = "SHA224", sha256 = "SHA256", sha384 = "SHA384", sha512 = "SHA512"
}

/// A running checksum over a file's bytes, finished as the lower-case hex PostgreSQL writes in
/// manifests. CRC-32C is ours (SSE 4.2 when present); the SHA-2 family is OpenSSL's libcrypto.
public final class Checksummer {
    public let algorithm: ChecksumAlgorithm
    private var crc: UInt32 = 0xFFFF_FFFF
    private let digest: OpaquePointer?

    public init(_ algorithm: ChecksumAlgorithm) {
        self.algorithm = algorithm
        let type: OpaquePointer?
        switch algorithm {
        case .sha224: type = EVP_sha224()
        case .sha256: type = EVP_sha256()
        case .sha384: type = EVP_sha384()
        case .sha512: type = EVP_sha512()
        case .none, .crc32c: type = nil
        }
        if let type {
            digest = EVP_MD_CTX_new()
            EVP_DigestInit_ex(digest, type, nil)
        } else {
            digest = nil
        }
    }

    deinit { if let digest { EVP_MD_CTX_free(digest) } }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        switch algorithm {
        case .crc32c: crc = pgkeep_crc32c_update(crc, base, bytes.count)
        case .none: break
        default: EVP_DigestUpdate(digest, base, bytes.count)
        }
    }

    /// Hex of the result: CRC-32C as its four bytes in little-endian order (PostgreSQL copies the
    /// integer's memory), SHA-2 as the digest bytes. Empty for NONE.
    public func finish() -> String {
        switch algorithm {
        case .none:
            return ""
        case .crc32c:
            return hex(withUnsafeBytes(of: (~crc).littleEndian) { Array($0) })
        default:
            var output = [UInt8](repeating: 0, count: 64)
            var length: UInt32 = 0
            EVP_DigestFinal_ex(digest, &output, &length)
            return hex(Array(output.prefix(Int(length))))
        }
    }

    private func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes { text.append(digits[Int(byte >> 4)]); text.append(digits[Int(byte & 15)]) }
        return String(decoding: text, as: UTF8.self)
    }
}
