// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "PortKnockO",
    products: [
        .executable(name: "pknockd", targets: ["pknockd"]),
        .executable(name: "pknock", targets: ["pknock"]),
        .library(name: "KnockCore", targets: ["KnockCore"]),
        .library(name: "KnockConfig", targets: ["KnockConfig"]),
        // For the fuzz package's NFLOG and netlink targets.
        .library(name: "Netfilter", targets: ["Netfilter"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.100.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.30.0"),
    ],
    targets: [
        // Pure: rules, peers, the knock state machine, SPA verification, packet parsing.
        .target(
            name: "KnockCore",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        // Pure parsing of the TOML config and of xt_pknock iptables rules files into KnockCore rules.
        .target(name: "KnockConfig", dependencies: ["KnockCore", "KnockPOSIX", .product(name: "Crypto", package: "swift-crypto")]),
        .systemLibrary(
            name: "CNFTables",
            pkgConfig: "libnftables",
            providers: [.apt(["libnftables-dev"])]
        ),
        // No pkgConfig: libnetfilter_log.pc has a line continuation SwiftPM cannot read; the headers
        // are in /usr/include and module.modulemap names the libraries.
        .systemLibrary(name: "CNFLog", providers: [.apt(["libnetfilter-log-dev"])]),
        // Debian's libqrencode, for `pknock client-config --qr` (fwknop's phone apps read keys from a QR code).
        .systemLibrary(name: "CQREncode", pkgConfig: "libqrencode", providers: [.apt(["libqrencode-dev"])]),
        // The only target that talks to netfilter: libnftables, NFLOG, the table-ownership netlink
        // socket and monitor. No knock concepts; the client does not link it.
        .target(
            name: "Netfilter",
            dependencies: ["CNFTables", "CNFLog"],
            swiftSettings: [.strictMemorySafety()]
        ),
        // Plain POSIX I/O shared by both binaries: secret files, child processes, the knock client's
        // sockets, line sockets (control and metrics), terminal prompts, key files. All its unsafe code
        // is marked (strict memory safety); nothing Linux-only outside `#if canImport(Glibc)`.
        .target(name: "KnockPOSIX", dependencies: ["CKnockPOSIX"], swiftSettings: [.strictMemorySafety()]),
        // The control socket's protocol: Codable requests, replies and events, JSON-lines framing, and
        // the client `pknock status|events|open|close` uses. The daemon's server speaks the same types.
        .target(name: "KnockControl", dependencies: ["KnockCore", "KnockPOSIX"]),
        // The glibc calls Swift's Glibc module hides: closefrom for posix_spawn (_GNU_SOURCE), mallopt and mallinfo2.
        .target(name: "CKnockPOSIX"),
        // The fleet's etcd v3 client over its JSON gateway (HTTP/1.1, async-http-client), and the pure
        // parts of replication: key layout, values, transactions, watch events, the mirror's diff.
        // Only the daemon links it (SwiftNIO stays out of the `pknock` client).
        .target(
            name: "KnockFleet",
            dependencies: [
                "KnockCore", .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .target(
            name: "KnockDaemon",
            dependencies: [
                "KnockCore", "KnockConfig", "KnockControl", "Netfilter", "KnockPOSIX", "KnockFleet",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "pknockd",
            dependencies: [
                "KnockDaemon", "KnockConfig", "KnockCore", "KnockPOSIX",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The client: nothing that links libnftables or libnetfilter_log (CLITests checks with ldd).
        .executableTarget(
            name: "pknock",
            dependencies: [
                "KnockCore", "KnockConfig", "KnockControl", "KnockPOSIX", "CQREncode",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Scripts/bench/coldpath.sh: the knock and grant paths' steps, timed cold and warm, in process.
        .executableTarget(
            name: "coldbench", dependencies: ["KnockDaemon", "KnockTestSupport", "KnockConfig", .product(name: "Logging", package: "swift-log")]),
        .target(name: "KnockTestSupport", dependencies: ["KnockCore", "Netfilter", "KnockPOSIX"]),
        // Test-only: counts the heap allocations of a code path (interposes the test binary's malloc).
        .target(name: "CAllocationCounter", path: "Tests/CAllocationCounter"),
        .testTarget(name: "KnockCoreTests", dependencies: ["KnockCore"]),
        .testTarget(name: "KnockConfigTests", dependencies: ["KnockConfig", "KnockCore"]),
        .testTarget(name: "KnockControlTests", dependencies: ["KnockControl", "KnockCore"]),
        .testTarget(name: "KnockFleetTests", dependencies: ["KnockFleet", "KnockCore"]),
        .testTarget(name: "NetfilterTests", dependencies: ["Netfilter", "KnockTestSupport"]),
        .testTarget(name: "NetfilterSystemTests", dependencies: ["Netfilter", "KnockDaemon", "KnockTestSupport"]),
        .testTarget(
            name: "KnockDaemonTests",
            dependencies: [
                "KnockDaemon", "KnockControl", "KnockTestSupport", "KnockPOSIX", "KnockFleet", "CAllocationCounter",
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            exclude: ["testdata"]
        ),
        .testTarget(
            name: "CLITests",
            dependencies: ["pknock", "pknockd", "KnockConfig", "KnockControl", .product(name: "Crypto", package: "swift-crypto")]
        ),
    ]
)
