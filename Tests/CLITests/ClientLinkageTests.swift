import Foundation
import Testing

/// The client installs without the daemon's firewall libraries, and its sources stay portable.
@Suite struct ClientLinkageTests {
    /// The shared libraries only the daemon may need.
    static let firewallLibraries = ["libnftables", "libnftnl", "libnetfilter_log", "libnfnetlink", "libmnl"]

    /// The shared libraries `ldd` lists for the built executable `name`.
    static func linkedLibraries(_ name: String) throws -> [String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ldd")
        process.arguments = [try CheckCommandTests.binary(name).path]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "ldd failed")
        // Lines like "\tlibnftables.so.1 => /lib/x86_64-linux-gnu/libnftables.so.1 (0x…)".
        return text.split(separator: "\n").compactMap { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).first.map(String.init) }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/ldd"), "needs ldd"))
    func pknockLinksNoFirewallLibrary() throws {
        let client = try Self.linkedLibraries("pknock")
        #expect(!client.isEmpty)
        for library in Self.firewallLibraries {
            #expect(!client.contains { $0.hasPrefix(library + ".") }, "pknock links \(library)")
        }
        // The same check finds them in the daemon, so it would notice them in the client.
        let daemon = try Self.linkedLibraries("pknockd")
        #expect(daemon.contains { $0.hasPrefix("libnftables.") } && daemon.contains { $0.hasPrefix("libnetfilter_log.") })
    }

    /// The client's own targets: pknock and the libraries it is built from.
    static let clientTargets = ["pknock", "KnockControl", "KnockPOSIX", "KnockConfig", "KnockCore"]

    @Test func clientTargetsUseGlibcOnlyBehindCanImport() throws {
        let manager = FileManager.default
        for target in Self.clientTargets {
            let directory = CheckCommandTests.packageRoot.appendingPathComponent("Sources/\(target)").path
            let files = try #require(manager.subpathsOfDirectory(atPath: directory).filter { $0.hasSuffix(".swift") } as [String]?)
            #expect(!files.isEmpty, "\(target) has no sources")
            for file in files {
                let text = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
                var guarded = 0
                for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                    let code = line.trimmingCharacters(in: .whitespaces)
                    if code.hasPrefix("#if canImport(Glibc)") { guarded += 1 }
                    if code.hasPrefix("#if") && !code.hasPrefix("#if canImport(Glibc)") && guarded > 0 { guarded += 1 }
                    if code.hasPrefix("#endif") && guarded > 0 { guarded -= 1 }
                    for module in ["Netfilter", "KnockDaemon", "CNFTables", "CNFLog"] {
                        #expect(code != "import \(module)", "\(target)/\(file) imports \(module)")
                    }
                    if code == "import Glibc" || code.hasPrefix("Glibc.") || code.contains(" Glibc.") || code.contains("(Glibc.") {
                        #expect(guarded > 0, "\(target)/\(file): Glibc outside #if canImport(Glibc): \(code)")
                    }
                }
            }
        }
    }
}
