#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Codecs
import Manifest
import PGKeep
import Sinks

/// Rebuilding a differential's files over its full's, checking each against the manifests as it
/// is written: shared by `restore --repo` and the Bacula plugin's restore.
public enum Reconstruction {
    /// The file a rebuilt one is written to (0600, never over another file).
    public struct Output: Sendable {
        public let path: String
        /// `path` exists already, empty (`FileSink.createPlaceholder`, made on another thread:
        /// `OSThread.fillCreated`); else it is created.
        public let created: Bool
        /// The tree is fsynced at the end: writeback starts as the file is written.
        public let startsWriteback: Bool

        public init(_ path: String, created: Bool = false, startsWriteback: Bool = false) {
            self.path = path
            self.created = created
            self.startsWriteback = startsWriteback
        }

        func sink() throws -> FileSink {
            try FileSink(path: path, syncOnFinish: false, startsWriteback: startsWriteback, placeholder: created)
        }
    }

    /// Decompresses `source` into `destination`, checking size and checksum against the manifest
    /// entry on the way.
    public static func copy(_ source: StoredFile, entry: BackupManifest.File, to destination: Output, stripIncrementalLines: Bool) throws -> UInt64 {
        let summer = Checksummer(entry.algorithm)
        var size: UInt64 = 0
        if stripIncrementalLines {
            var bytes: [UInt8] = []
            try source.stream { bytes.append(contentsOf: $0); summer.update($0) }
            size = UInt64(bytes.count)
            try Self.checkIntegrity(source.path, entry: entry, size: size, summer: summer)
            let sink = try destination.sink()
            try wholeBackupLabel(bytes).withUnsafeBytes { try sink.consume($0) }
            try sink.finish()
            return sink.bytesWritten
        }
        let sink = try destination.sink()
        try source.stream { chunk in
            try sink.consume(chunk)
            summer.update(chunk)
            size += UInt64(chunk.count)
        }
        try sink.finish()
        try Self.checkIntegrity(source.path, entry: entry, size: size, summer: summer)
        return size
    }

    /// An incremental backup's backup_label as pg_combinebackup writes it for the combined
    /// backup: the label of a whole backup, without the INCREMENTAL FROM lines.
    public static func wholeBackupLabel(_ label: [UInt8]) -> [UInt8] {
        let lines = String(decoding: label, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("INCREMENTAL FROM LSN:") && !$0.hasPrefix("INCREMENTAL FROM TLI:") }
        return Array(lines.joined(separator: "\n").utf8)
    }

    public static func checkIntegrity(_ path: String, entry: BackupManifest.File, size: UInt64, summer: Checksummer) throws {
        guard size == entry.size else {
            throw PGKeepError.verification("\(path) holds \(size) bytes, but the manifest says \(entry.size) for \"\(entry.path)\"")
        }
        if entry.algorithm != .none, let expected = entry.checksum, summer.finish() != expected {
            throw PGKeepError.verification("checksum mismatch for \"\(entry.path)\" (\(path)): the repository's copy is damaged")
        }
    }

    /// A file-comparison differential's relation file: its changed pages (block number, page),
    /// ascending, over the full's copy; the result must be this backup's file, byte for byte
    /// (its size and checksum are checked against this backup's manifest).
    public static func applyDelta(_ delta: StoredFile, full: StoredFile, fullEntry: BackupManifest.File, entry: BackupManifest.File,
                            blockSize: Int, to destination: Output) throws -> UInt64 {
        let reader = try delta.openForReading()
        let record = 4 + blockSize
        guard reader.size % UInt64(record) == 0 else { throw PGKeepError.verification("\(delta.path) is not a whole block delta") }
        let records = Int(reader.size / UInt64(record))
        var nextRecord = 0
        func blockNumber(_ index: Int) throws -> UInt64 {
            let bytes = try reader.bytes(at: UInt64(index * record), count: 4)
            return UInt64(bytes[0]) | UInt64(bytes[1]) << 8 | UInt64(bytes[2]) << 16 | UInt64(bytes[3]) << 24
        }
        let length = entry.size / UInt64(blockSize)
        let sink = try destination.sink()
        let summer = Checksummer(entry.algorithm)
        var block: UInt64 = 0
        func emit(full page: UnsafeRawBufferPointer?) throws {
            defer { block += 1 }
            guard block < length else { return }
            if nextRecord < records, try blockNumber(nextRecord) == block {
                try reader.read(at: UInt64(nextRecord * record + 4), count: blockSize) { summer.update($0); try sink.consume($0) }
                nextRecord += 1
            } else if let page {
                summer.update(page)
                try sink.consume(page)
            } else {
                throw PGKeepError.verification("\(delta.path) lacks block \(block), which the full's copy does not have either")
            }
        }
        let fullSummer = Checksummer(fullEntry.algorithm)
        var fullSize: UInt64 = 0
        var pages = PageSplitter(blockSize: blockSize)
        try full.stream { chunk in
            fullSummer.update(chunk)
            fullSize += UInt64(chunk.count)
            try pages.consume(chunk) { try emit(full: $0) }
        }
        try Self.checkIntegrity(full.path, entry: fullEntry, size: fullSize, summer: fullSummer)
        while block < length { try emit(full: nil) }
        try sink.finish()
        try Self.checkIntegrity(destination.path, entry: entry, size: sink.bytesWritten, summer: summer)
        return sink.bytesWritten
    }

    /// pg_combinebackup's reconstruct_from_incremental_file for one full and one incremental: each
    /// output block from the incremental file when it has it, else from the full's file below the
    /// truncation length, else zeros. The full's file streams past once; the incremental file is
    /// read where its blocks lie.
    public static func reconstruct(incremental: StoredFile, entry: BackupManifest.File, full: StoredFile, fullEntry: BackupManifest.File,
                             blockSize: Int, to destination: Output) throws -> UInt64 {
        // The incremental file, checked whole against its manifest entry, then read by offset.
        let reader = try incremental.openForReading()
        let incrementalSummer = Checksummer(entry.algorithm)
        try reader.read(at: 0, count: Int(reader.size)) { incrementalSummer.update($0) }
        try Self.checkIntegrity(incremental.path, entry: entry, size: reader.size, summer: incrementalSummer)
        let headerBytes = try reader.bytes(at: 0, count: Int(min(reader.size, UInt64(IncrementalFileHeader.fixedSize + 4 * Int(IncrementalFileHeader.segmentBlocks)))))
        let header: IncrementalFileHeader
        do {
            guard let decoded = try IncrementalFileHeader.decode(headerBytes, blockSize: blockSize, path: entry.path),
                  decoded.fileSize(blockSize: blockSize) == Int(reader.size) else {
                throw PGKeepError.verification("\(entry.path) is not a whole incremental file (\(reader.size) bytes)")
            }
            header = decoded
        } catch let error as IncrementalFileHeader.Invalid {
            throw PGKeepError.verification(error.description)
        }
        var indexOf: [UInt32: Int] = [:]
        for (index, block) in header.blockNumbers.enumerated() { indexOf[block] = index }
        let length = header.reconstructedBlocks
        let sink = try destination.sink()
        let zeros = [UInt8](repeating: 0, count: blockSize)
        var next: UInt32 = 0
        func emit(_ block: UInt32, full: UnsafeRawBufferPointer?) throws {
            if let index = indexOf[block] {
                try reader.read(at: UInt64(header.headerSize + index * blockSize), count: blockSize) { try sink.consume($0) }
            } else if let full, block < header.truncationBlockLength {
                try sink.consume(full)
            } else {
                try zeros.withUnsafeBytes { try sink.consume($0) }
            }
        }
        // The full's file, block by block, as it decompresses; checked against its manifest entry.
        let fullSummer = Checksummer(fullEntry.algorithm)
        var pages = PageSplitter(blockSize: blockSize)
        var fullSize: UInt64 = 0
        try full.stream { chunk in
            fullSummer.update(chunk)
            fullSize += UInt64(chunk.count)
            try pages.consume(chunk) { page in
                if next < length { try emit(next, full: page) }
                next += 1
            }
        }
        try Self.checkIntegrity(full.path, entry: fullEntry, size: fullSize, summer: fullSummer)
        while next < length {
            try emit(next, full: nil)
            next += 1
        }
        try sink.finish()
        return sink.bytesWritten
    }
}

/// Which visibility maps a restore may rebuild from the server's incremental files.
///
/// Before 18.6 (and in every 17.x tested here, 17.10 included) the WAL summarizer misses the
/// visibility-map pages a heap update or delete clears: the bit is cleared as a side effect of the
/// heap record, which names no VM block. An INCREMENTAL `_vm` file then lacks those pages, and
/// the full's stale copy says "all visible" for pages that are not: index-only scans return dead
/// rows (pg_combinebackup gives the same result). The map is only a hint that must never be wrong
/// in the "visible" direction, so such a fork is left out of the restore: PostgreSQL reads a
/// missing map as "nothing known visible", and the next VACUUM rebuilds it.
public enum IncrementalVisibilityMap {
    /// True when a server of this version summarizes cleared VM bits (18.6 and later).
    public static func isTrusted(serverVersion: String) -> Bool {
        let parts = serverVersion.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        guard let major = parts.first else { return false }
        let minor = parts.count > 1 ? parts[1] : 0
        return major > 18 || (major == 18 && minor >= 6)
    }

    /// A visibility-map fork: `<relfilenode>_vm` or a later segment of one.
    public static func isVisibilityMap(_ relationPath: String) -> Bool {
        guard let name = relationPath.split(separator: "/").last else { return false }
        return name.hasSuffix("_vm") || name.contains("_vm.")
    }
}
