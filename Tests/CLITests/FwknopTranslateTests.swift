import Foundation
import KnockConfig
import KnockCore
import Testing

@testable import pknock

/// `pknock translate` of fwknopd's access.conf and fwknopd.conf.
@Suite struct FwknopTranslateTests {
    static let access = """
        # fwknopd access.conf
        SOURCE              ANY
        OPEN_PORTS          tcp/22, udp/53
        KEY_BASE64          AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
        HMAC_KEY_BASE64     ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTlJWWl5iZmpucnZ6foKGiow==
        FW_ACCESS_TIMEOUT   60
        REQUIRE_SOURCE_ADDRESS Y

        SOURCE              192.0.2.0/24
        OPEN_PORTS          tcp/2222
        KEY                 legacy-passphrase
        HMAC_KEY            legacy-hmac
        ENABLE_CMD_EXEC     Y

        SOURCE ANY
        GPG_DECRYPT_ID      ABCD1234
        """
    static let server = "PCAP_FILTER udp port 62299;\nMAX_SPA_PACKET_AGE 90;\nENABLE_IPT_FORWARDING Y;\n"

    @Test func detectsAccessConf() {
        #expect(Translation.detect(Self.access) == .fwknop)
        #expect(Translation.detect("[openSSH]\nsequence = 1,2,3\n") == .knockd)
    }

    @Test func translationLoadsWithItsKeyFiles() throws {
        let result = Translation.fwknop(access: Self.access, file: "access.conf", serverConfig: (Self.server, "fwknopd.conf"))
        // The key comments become the key files, as the administrator is told to do.
        var files: [String: [UInt8]] = [:]
        var current: String?
        for line in result.toml.split(separator: "\n") {
            if line.hasPrefix("# Write these lines to "), let path = line.split(separator: " ").dropFirst(5).first {
                current = "/etc/pknock/" + path
                files[current!] = []
            } else if line.hasPrefix("#   "), let current {
                files[current]! += Array((line.dropFirst(4) + "\n").utf8)
            }
        }
        #expect(files.count == 2)
        let configuration = try ConfigLoader.parseTOML(result.toml, file: "/etc/pknock/pknock.toml", secrets: InMemorySecretSource(files))
        #expect(configuration.rules.map(\.name.rawValue) == ["FWKNOP1", "FWKNOP2"])
        #expect(configuration.rules.allSatisfy { $0.knockSequence == [ServicePort(Port(rawValue: 62299)!, .udp)] })
        #expect(configuration.rules[0].fwknop == FwknopRuleSettings(requireSourceAddress: true))
        #expect(configuration.rules[0].autoclose == .seconds(60))
        #expect(configuration.rules[0].protectedPorts.map(\.description) == ["22:tcp", "53:udp"])
        #expect(configuration.rules[1].autoclose == .seconds(30), "fwknopd's default FW_ACCESS_TIMEOUT")
        #expect(configuration.daemon.fwknopClockWindow == .seconds(90))
        #expect(configuration.fwknopClients.map(\.id) == ["fwknop1", "fwknop2"])
        // A passphrase's bytes are the key, as fwknop uses them.
        #expect(configuration.fwknopClients[1].keys.encryptionKey == Secret("legacy-passphrase"))
        #expect(configuration.fwknopClients[1].keys.hmacKey == Secret("legacy-hmac"))
        #expect(configuration.fwknopClients[0].keys.hmacKey.bytes == Array(100..<164))
    }

    @Test func whatDoesNotMapIsACommentAndAWarning() {
        let result = Translation.fwknop(access: Self.access, file: "access.conf", serverConfig: (Self.server, "fwknopd.conf"))
        for expected in [
            "access.conf:9: stanza 2 (line 9): SOURCE 192.0.2.0/24: pknock rules take packets from any address",
            "access.conf:13: stanza 2 (line 9): ENABLE_CMD_EXEC: pknockd runs no commands sent in packets",
            "access.conf:16: stanza 3 (line 15): GPG_DECRYPT_ID: GnuPG packets are not supported",
            "access.conf:15: stanza 3 (line 15) has no KEY_BASE64 or KEY (GnuPG only?); skipped",
            "fwknopd.conf:3: ENABLE_IPT_FORWARDING has no pknock equivalent; left out",
        ] {
            #expect(result.warnings.contains { $0.hasPrefix(expected) }, "\(expected)")
        }
        #expect(result.toml.contains("# NOTE: ENABLE_CMD_EXEC: pknockd runs no commands sent in packets"))
        #expect(result.toml.contains("# NOTE: fwknopd.conf:3: ENABLE_IPT_FORWARDING Y has no pknock equivalent"))
    }

    @Test func withoutHMACTheClientIsToldToMove() throws {
        let result = Translation.fwknop(
            access: "SOURCE ANY\nKEY_BASE64 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\nOPEN_PORTS tcp/22\n", file: "a", serverConfig: nil)
        #expect(result.toml.contains("knock = [\"62201:udp\"]"))
        #expect(result.warnings.contains { $0.contains("no HMAC key: pknockd refuses fwknop packets without HMAC") })
        // Loading it says the same: the configuration is refused until there is an HMAC key.
        let files = ["/etc/pknock/keys/fwknop.fwknop": Array("KEY_BASE64: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n".utf8)]
        #expect(throws: ConfigError.self) {
            try ConfigLoader.parseTOML(result.toml, file: "/etc/pknock/pknock.toml", secrets: InMemorySecretSource(files))
        }
    }
}
