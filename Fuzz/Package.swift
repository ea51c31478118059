// swift-tools-version:6.2
// libFuzzer targets for PortKnockO, one executable each. Built by Scripts/fuzz.sh:
//
//   swift build --package-path Fuzz -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
//
// A separate package so the fuzzer flags never reach the product build. It depends on the root
// package's KnockCore and KnockConfig libraries.
import Foundation
import PackageDescription

// A path dependency's identity is its directory's name, whatever the clone is called.
let rootIdentity = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent
let knockCore = Target.Dependency.product(name: "KnockCore", package: rootIdentity)
let knockConfig = Target.Dependency.product(name: "KnockConfig", package: rootIdentity)
let netfilter = Target.Dependency.product(name: "Netfilter", package: rootIdentity)

let package = Package(
    name: "PortKnockOFuzz",
    dependencies: [
        .package(path: ".."),
        // For the SPA v2 target's client keys (it signs what it fuzzes).
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    ],
    targets: [
        .target(name: "CFuzzDriver"),
        .executableTarget(name: "FuzzPacketParser", dependencies: [knockCore, "CFuzzDriver"]),
        .executableTarget(
            name: "FuzzSPAVerify", dependencies: [knockCore, "CFuzzDriver", .product(name: "Crypto", package: "swift-crypto")]),
        .executableTarget(name: "FuzzRulesFile", dependencies: [knockCore, knockConfig, "CFuzzDriver"]),
        .executableTarget(name: "FuzzTOML", dependencies: [knockCore, knockConfig, "CFuzzDriver"]),
        .executableTarget(name: "FuzzNetlink", dependencies: [netfilter, "CFuzzDriver"]),
    ]
)
