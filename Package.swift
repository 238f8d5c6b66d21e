// swift-tools-version:6.0
// pgkeep: a PostgreSQL backup engine that speaks the replication protocol.
// Module layout and the dependency direction are described in README.md ("Layout").
import PackageDescription

let package = Package(
    name: "pgkeep",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "pgkeep", targets: ["pgkeep"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // System libraries, linked through module maps (Debian: libpq-dev liblz4-dev libzstd-dev zlib1g-dev).
        .systemLibrary(name: "CLibPQ", path: "Sources/CLibPQ"),
        .systemLibrary(name: "CLZ4", path: "Sources/CLZ4"),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CLibCrypto", path: "Sources/CLibCrypto"),
        // Thin C wrappers for what Swift cannot call: zlib's init macros and _GNU_SOURCE syscalls.
        .target(name: "CPGKeepShims", dependencies: ["CZlib"],
                cSettings: [.define("_GNU_SOURCE")]),

        // memcpy/memmove for the pgkeep executable alone: glibc's, but for the copies its rep movsb
        // makes 15 times slower on AMD CPUs (libpq's copy of every CopyData message). Linked into
        // the executable only, never into the Bacula plugin's shared object.
        .target(name: "CPGKeepMemcpy"),
        // GnuTLS's load-time initialisation skipped for the pgkeep executable alone (libpq5 loads
        // GnuTLS through libldap; pgkeep never uses it): 0.7 MB less resident per command.
        .target(name: "CPGKeepGnuTLS"),
        // libm's functions for the pgkeep executable alone: rounding on the CPU's instruction, the
        // rest loaded on first use, so that no command loads libm at start (0.4 MB resident).
        .target(name: "CPGKeepLazyMath"),

        // Pure Swift: bytes in, values or actions out. No C, no Foundation, no logging.
        .target(name: "PGWire"),
        .target(name: "ArchiveStream"),

        .target(name: "Codecs", dependencies: ["ArchiveStream", "Sinks", "CLZ4", "CZstd", "CZlib", "CPGKeepShims"]),
        .target(name: "Sinks", dependencies: ["ArchiveStream", "CPGKeepShims"]),
        // WAL files: names, histories, the archive directory and writers, the record checker. No libpq.
        .target(name: "WAL", dependencies: ["PGWire", "ArchiveStream", "Codecs", "Sinks", "CPGKeepShims"]),
        // libpq: connections, and the loops that drive the protocol state machines over them.
        .target(name: "PGConnection", dependencies: ["PGWire", "WAL", "Sinks", "CLibPQ"]),
        // Backup manifests: parsing, their checksum algorithms.
        .target(name: "Manifest", dependencies: ["PGWire", "CPGKeepShims", "CLibCrypto"]),
        .target(name: "PGKeep", dependencies: [
            "PGWire", "ArchiveStream", "Codecs", "Sinks", "PGConnection", "WAL", "Manifest",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // A backup repository: Full/Incremental/Differential levels, restore with reconstruction.
        .target(name: "Repository", dependencies: [
            "PGKeep", "PGWire", "PGConnection", "WAL", "Codecs", "Sinks", "Manifest", "CPGKeepShims",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The frames between the Bacula plugin and its backend: pure, stdlib only.
        .target(name: "PluginFrames"),
        // The Bacula plugin itself: C, speaking the FD plugin interface v14. SwiftPM compiles it (its
        // layout checks run in every build, its frame codec is tested from Swift); the shared
        // object Bacula loads, linked to libc alone, is made by tools/build-plugin.sh.
        .target(name: "CBaculaFD"),
        // Logical backups on PostgreSQL's own pg_dump, pg_dumpall, pg_restore and psql.
        .target(name: "Dump", dependencies: [
            "PGKeep", "PGWire", "PGConnection", "ArchiveStream", "Sinks",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // pgkeep's side of the Bacula plugin: `pgkeep bacula backend`, PITR and dump jobs as frames.
        .target(name: "BaculaBackend", dependencies: [
            "PGKeep", "Repository", "Dump", "PluginFrames", "PGConnection", "PGWire", "WAL", "Sinks", "Codecs", "Manifest",
            "ArchiveStream", .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "pgkeep", dependencies: [
            "PGKeep", "Repository", "Dump", "BaculaBackend", "PGWire", "PGConnection", "Codecs", "Sinks", "CPGKeepMemcpy",
            "CPGKeepGnuTLS", "CPGKeepLazyMath",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], linkerSettings: [
            // Release: lld packs the binary's 80,000 relative relocations into 15 kB (DT_RELR, glibc
            // 2.36+) instead of 1.9 MB that the loader reads at every start: 1.2 MB less resident.
            .unsafeFlags(["-Xclang-linker", "-fuse-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"],
                         .when(configuration: .release)),
            // GnuTLS's constructor asks the program, by this name, whether to skip its start-up
            // work (Sources/CPGKeepGnuTLS): the executable must export the answer.
            .unsafeFlags(["-Xlinker", "--export-dynamic-symbol=_gnutls_global_init_skip"]),
        ]),

        // Tests.
        .target(name: "TestSupport", dependencies: ["ArchiveStream"], path: "Tests/TestSupport"),
        .testTarget(name: "PGWireTests", dependencies: ["PGWire"]),
        .testTarget(name: "ArchiveStreamTests", dependencies: ["ArchiveStream", "TestSupport"]),
        .testTarget(name: "CodecsTests", dependencies: ["Codecs", "ArchiveStream", "CZstd", "TestSupport"]),
        .testTarget(name: "SinksTests", dependencies: ["Sinks", "ArchiveStream", "TestSupport"]),
        .testTarget(name: "CPGKeepMemcpyTests", dependencies: ["CPGKeepMemcpy"]),
        .testTarget(name: "CPGKeepLazyMathTests", dependencies: ["CPGKeepLazyMath"]),
        .testTarget(name: "RepositoryTests", dependencies: ["Repository", "PGWire", "TestSupport"]),
        .testTarget(name: "DumpTests", dependencies: ["Dump"]),
        .testTarget(name: "PluginFramesTests", dependencies: ["PluginFrames", "CBaculaFD", "TestSupport"]),
        .testTarget(name: "BaculaBackendTests", dependencies: ["BaculaBackend", "PluginFrames", "Manifest", "PGKeep", "TestSupport"]),
        .testTarget(name: "PGKeepTests", dependencies: ["PGKeep", "PGConnection", "PGWire", "Codecs", "ArchiveStream", "Sinks", "WAL", "Manifest", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["pgkeep"]),
        .testTarget(name: "EndToEndTests", dependencies: [
            "PGWire", "PGKeep", "PGConnection", "TestSupport", "pgkeep", .product(name: "Logging", package: "swift-log"),
        ]),
    ]
)
