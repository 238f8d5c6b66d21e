// swift-tools-version:6.0
// rss-floor: the least resident set a Swift program on pgkeep's dependencies, linked as pgkeep is,
// can have. It parses its command line with swift-argument-parser, makes a swift-log Logger and
// calls libpq once (so that libpq and everything it loads are there), then prints libpq's
// version: nothing of pgkeep's own. tools/ship-build --product rss-floor links it with pgkeep's
// settings, static Swift runtime and pgkeep's order file included; tools/bench reports its peak
// RSS beside pgkeep's and the C tools': what of pgkeep's resident set comes with its language and
// its dependencies, and what is pgkeep's own.
//
// Its C targets are pgkeep's (symbolic links into ../../Sources): the same memcpy, GnuTLS's
// start-up skipped the same way, libm loaded lazily the same way. Its Swift packages are pgkeep's
// own checkouts (tools/ship-build resolves pgkeep's package first), at the versions pgkeep pins.
import PackageDescription

let package = Package(
    name: "rss-floor",
    dependencies: [
        .package(path: "../../.build/checkouts/swift-argument-parser"),
        .package(path: "../../.build/checkouts/swift-log"),
    ],
    targets: [
        .systemLibrary(name: "CLibPQ"),
        .target(name: "CPGKeepMemcpy"),
        .target(name: "CPGKeepGnuTLS"),
        .target(name: "CPGKeepLazyMath"),
        .executableTarget(name: "rss-floor", dependencies: [
            "CLibPQ", "CPGKeepMemcpy", "CPGKeepGnuTLS", "CPGKeepLazyMath",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], linkerSettings: [
            // As pgkeep's Package.swift links pgkeep (each flag is explained there).
            .unsafeFlags(["-Xclang-linker", "-fuse-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                          "-Xlinker", "--export-dynamic-symbol=_gnutls_global_init_skip"]),
        ]),
    ]
)
