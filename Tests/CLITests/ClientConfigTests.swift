import Foundation
import KnockConfig
import KnockCore
import Testing

@testable import pknock

/// `pknock client-config`: what each kind of rule exports, and the QR code decoding back.
@Suite struct ClientConfigTests {
    static let keyText =
        "KEY_BASE64: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\nHMAC_KEY_BASE64: ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTlJWWl5iZmpucnZ6foKGiow==\n"
    static let text = """
        [[rule]]
        name = "FWK"
        spa = "fwknop"
        protect = [22, "53:udp"]

        [[rule]]
        name = "SSH"
        knock = [2002, "2001:udp"]
        time = 5
        protect = [2222]

        [[client]]
        id = "laptop"
        fwknop_key_file = "keys/laptop.fwknop"
        rules = ["FWK"]
        """

    static func configuration() throws -> Configuration {
        try ConfigLoader.parseTOML(
            text, file: "/etc/pknock/pknock.toml", secrets: InMemorySecretSource(["/etc/pknock/keys/laptop.fwknop": Array(keyText.utf8)]))
    }

    @Test func fwknopRulesExportAFwknoprcStanzaAndTheQRText() throws {
        let configuration = try Self.configuration()
        let export = try ClientExport.make(configuration.rules[0], configuration: configuration, client: nil, host: "192.0.2.1")
        for line in [
            "[FWK]", "SPA_SERVER          192.0.2.1", "SPA_SERVER_PORT     62201", "ACCESS              tcp/22,udp/53",
            "ALLOW_IP            source", "KEY_BASE64          AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "USE_HMAC            Y",
        ] {
            #expect(export.text.contains(line + "\n"), "\(line)")
        }
        let qr =
            "KEY_BASE64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= HMAC_KEY_BASE64:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTlJWWl5iZmpucnZ6foKGiow=="
        #expect(export.qrTexts.map(\.1) == [qr])
        #expect(throws: ClientUsageError.self) {
            try ClientExport.make(configuration.rules[0], configuration: configuration, client: "phone", host: "h")
        }
    }

    @Test func sequenceRulesExportKnockOnPortsJSONAndKnockd() throws {
        let configuration = try Self.configuration()
        let export = try ClientExport.make(configuration.rules[1], configuration: configuration, client: nil, host: "192.0.2.1")
        let jsonText = try #require(export.text.components(separatedBy: "\n\n").first?.split(separator: "\n", maxSplits: 1).last)
        let hosts = try #require(try JSONSerialization.jsonObject(with: Data(jsonText.utf8)) as? [[String: Any]])
        #expect(hosts.first?["hostname"] as? String == "192.0.2.1")
        let ports = try #require(hosts.first?["ports"] as? [[String: Any]])
        #expect(ports.map { $0["port"] as? Int } == [2002, 2001])
        #expect(ports.map { $0["protocol"] as? String } == ["TCP", "UDP"])
        #expect(export.text.contains("    sequence    = 2002:tcp,2001:udp\n"))
        #expect(export.text.contains("knock -d 200 192.0.2.1 2002:tcp 2001:udp\n"))
        #expect(export.text.contains("[profile.SSH]\nhost = \"192.0.2.1\"\nknock = [\"2002:tcp\", \"2001:udp\"]\n"))
        #expect(export.qrTexts.isEmpty)
    }

    @Test func checkDescribesFwknopRulesWithoutKeys() throws {
        let text = Check.text(try Self.configuration())
        #expect(text.contains("fwknop, HMAC required, clock window: 2m, source address required: no, named addresses: no, clients: laptop"))
        #expect(!text.contains("AAECAwQF"))
    }

    @Test func theQRCodeHasFinderPatterns() throws {
        let code = try QRCode("KEY_BASE64:abc HMAC_KEY_BASE64:def")
        #expect(code.width >= 21 && (code.width - 17) % 4 == 0)
        // The top-left finder: a dark 7x7 ring around a light ring around a dark 3x3 centre.
        #expect((0..<7).allSatisfy { code.modules[$0] && code.modules[6 * code.width + $0] })
        #expect(!code.modules[1 * code.width + 1] && code.modules[3 * code.width + 3])
        #expect(code.pgm(scale: 2).count == "P5\n\((code.width + 8) * 2) \((code.width + 8) * 2)\n255\n".utf8.count + (code.width + 8) * (code.width + 8) * 4)
    }

    /// The QR code decodes back to the same text with zbarimg (Debian's zbar-tools), when installed.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/zbarimg")))
    func theQRCodeDecodesBackWithZbarimg() throws {
        let configuration = try Self.configuration()
        let export = try ClientExport.make(configuration.rules[0], configuration: configuration, client: nil, host: "h")
        let text = try #require(export.qrTexts.first?.1)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("qr-\(UUID().uuidString).pgm")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(try QRCode(text).pgm(scale: 4)).write(to: file)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/zbarimg")
        process.arguments = ["-q", "--raw", file.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let decoded = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(String(decoding: decoded, as: UTF8.self).trimmingCharacters(in: .newlines) == text)
    }
}
