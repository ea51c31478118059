import KnockConfig
import KnockCore
import Testing

/// `spa = "fwknop"` rules and their `[[client]]` entries with `fwknop_key_file`.
@Suite struct FwknopConfigTests {
    static let keyFile = "/etc/pknock/keys/laptop.fwknop"
    static let keyText =
        "KEY_BASE64: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\nHMAC_KEY_BASE64: ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTlJWWl5iZmpucnZ6foKGiow==\n"
    static let text = """
        [daemon]
        fwknop_clock_window = 90

        [[rule]]
        name = "FWK"
        spa = "fwknop"
        require_source_address = true
        autoclose = 60
        protect = [22, "53:udp"]

        [[client]]
        id = "laptop"
        fwknop_key_file = "keys/laptop.fwknop"
        rules = ["FWK"]
        """

    @Test func rulesAndClientsLoad() throws {
        let configuration = try Fixture.load(Self.text, secrets: InMemorySecretSource([Self.keyFile: Array(Self.keyText.utf8)]))
        let rule = try #require(configuration.rules.first)
        #expect(rule.fwknop == FwknopRuleSettings(requireSourceAddress: true))
        #expect(rule.knockSequence == [ServicePort(Fwknop.defaultPort, .udp)], "the default port is fwknop's 62201/udp")
        #expect(configuration.daemon.fwknopClockWindow == .seconds(90))
        #expect(configuration.fwknopClients.map(\.id) == ["laptop"])
        #expect(configuration.fwknopClients.first?.keys == (try Fwknop.Keys(parsing: Self.keyText)))
        #expect(configuration.clients.isEmpty)
    }

    @Test(arguments: [
        (
            "KEY_BASE64: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
            "/etc/pknock/pknock.toml:13: fwknop_key_file: client laptop: keys/laptop.fwknop: HMAC_KEY_BASE64 is missing: fwknop packets without an HMAC are refused; make keys with fwknop --key-gen and send with --use-hmac"
        ),
        (
            "KEY: secret\n",
            "/etc/pknock/pknock.toml:13: fwknop_key_file: client laptop: keys/laptop.fwknop: KEY (a passphrase) is not supported; use KEY_BASE64 from fwknop --key-gen"
        ),
    ])
    func keyFileRefusals(contents: String, expected: String) {
        let errors = Fixture.errors(Self.text, secrets: InMemorySecretSource([Self.keyFile: Array(contents.utf8)])).map(\.description)
        #expect(errors.contains(expected), "\(errors)")
    }

    @Test(arguments: [
        (
            "[[rule]]\nname = \"F\"\nspa = \"fwknop\"\nopen_secret = \"x\"\nprotect = [22]\n",
            "/etc/pknock/pknock.toml:4: rule F: open_secret: fwknop rules take their keys from [[client]] entries (fwknop_key_file), not open_secret"
        ),
        (
            "[[rule]]\nname = \"F\"\nspa = \"fwknop\"\nknock = [62201]\nprotect = [22]\n",
            "/etc/pknock/pknock.toml:4: rule F: knock: an fwknop rule needs exactly one UDP knock port (fwknop's default is 62201)"
        ),
        (
            "[[rule]]\nname = \"A\"\nknock = [1]\nrequire_source_address = true\nprotect = [22]\n",
            "/etc/pknock/pknock.toml:4: rule A: require_source_address: applies only to fwknop rules (spa = \"fwknop\")"
        ),
        (
            "[[rule]]\nname = \"V2\"\nknock = [\"4500:udp\"]\nspa = \"v2\"\nprotect = [22]\n[[client]]\nid = \"c\"\nrules = [\"V2\"]\nfwknop_key_file = \"k\"\n",
            "/etc/pknock/pknock.toml:8: rules: client c: V2 is not an fwknop rule (spa = \"fwknop\")"
        ),
        ("[daemon]\nfwknop_clock_window = 2\n", "/etc/pknock/pknock.toml:2: daemon.fwknop_clock_window: must be 5 seconds to 1 hour"),
    ])
    func refusals(text: String, expected: String) {
        let errors = Fixture.errors(text).map(\.description)
        #expect(errors.contains(expected), "\(errors)")
    }
}
