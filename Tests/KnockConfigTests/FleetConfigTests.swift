import KnockCore
import Testing

@testable import KnockConfig

@Suite struct FleetConfigTests {
    static let rule = """
        [[rule]]
        name = "SSH"
        knock = [2001, 2002]
        protect = [22]

        """
    static let secrets = InMemorySecretSource(texts: [
        "/etc/pknock/etcd-password": "s3cret-etcd\n",
        "/etc/pknock/etcd-client.key": "-----BEGIN PRIVATE KEY-----\n",
    ])

    @Test func withoutAFleetTableThereIsNoFleet() throws {
        #expect(try Fixture.load(Self.rule).fleet == nil)
    }

    @Test func readsEveryKey() throws {
        let configuration = try Fixture.load(
            Self.rule + """
                [fleet]
                endpoints = ["https://198.51.100.11:2379", "https://198.51.100.12:2379/"]
                node = "gw-a"
                prefix = "/pk/prod"
                commit_timeout = "350ms"
                on_unreachable = "local"
                ca_file = "etcd-ca.pem"
                cert_file = "/etc/pknock/etcd-client.pem"
                key_file = "/etc/pknock/etcd-client.key"
                username = "pknock"
                password_file = "/etc/pknock/etcd-password"
                """, secrets: Self.secrets)
        let fleet = try #require(configuration.fleet)
        #expect(fleet.endpoints == ["https://198.51.100.11:2379", "https://198.51.100.12:2379"])
        #expect(fleet.node == "gw-a")
        #expect(fleet.prefix == "/pk/prod")
        #expect(fleet.commitTimeout == .milliseconds(350))
        #expect(fleet.onUnreachable == .local)
        #expect(fleet.caFile == "/etc/pknock/etcd-ca.pem")
        #expect(fleet.certFile == "/etc/pknock/etcd-client.pem")
        #expect(fleet.keyFile == "/etc/pknock/etcd-client.key")
        #expect(fleet.username == "pknock")
        #expect(fleet.password == "s3cret-etcd")
    }

    @Test func defaults() throws {
        let fleet = try #require(try Fixture.load(Self.rule + "[fleet]\nendpoints = [\"http://198.51.100.11:2379\"]\n").fleet)
        #expect(fleet.prefix == "/pknock")
        #expect(fleet.commitTimeout == .milliseconds(200))
        #expect(fleet.onUnreachable == .refuse)
        #expect(FleetSettings.nodeProblem(fleet.node) == nil)
        #expect(fleet.username == nil && fleet.password == nil && fleet.caFile == nil)
    }

    @Test(arguments: [
        ("[fleet]\nnode = \"gw-a\"\n", "fleet.endpoints", "needs endpoints"),
        ("[fleet]\nendpoints = []\n", "fleet.endpoints", "non-empty array"),
        ("[fleet]\nendpoints = [\"198.51.100.11:2379\"]\n", "fleet.endpoints", "http://HOST:PORT"),
        ("[fleet]\nendpoints = [\"http://198.51.100.11:2379/v3\"]\n", "fleet.endpoints", "no path"),
        ("[fleet]\nendpoints = [\"http://198.51.100.11\"]\n", "fleet.endpoints", "http://HOST:PORT"),
        ("[fleet]\nendpoints = [\"http://198.51.100.11:2379\"]\nnode = \"gw/a\"\n", "fleet.node", "letters, digits"),
        ("[fleet]\nendpoints = [\"http://198.51.100.11:2379\"]\nprefix = \"/pknock/\"\n", "fleet.prefix", "not end"),
        ("[fleet]\nendpoints = [\"http://198.51.100.11:2379\"]\nprefix = \"pknock\"\n", "fleet.prefix", "start with"),
        ("[fleet]\nendpoints = [\"http://198.51.100.11:2379\"]\ncommit_timeout = \"1ms\"\n", "fleet.commit_timeout", "10 ms to 30 seconds"),
        ("[fleet]\nendpoints = [\"http://198.51.100.11:2379\"]\ncommit_timeout = \"soon\"\n", "fleet.commit_timeout", "invalid duration"),
        ("[fleet]\nendpoints = [\"http://198.51.100.11:2379\"]\ncommit_timeout = \"2.5ms\"\n", "fleet.commit_timeout", "whole milliseconds"),
        ("[fleet]\nendpoints = [\"http://198.51.100.11:2379\"]\ncommit_timeout = \"31s\"\n", "fleet.commit_timeout", "10 ms to 30 seconds"),
        ("[fleet]\nendpoints = [\"http://198.51.100.11:2379\"]\non_unreachable = \"open\"\n", "fleet.on_unreachable", "\"refuse\" or \"local\""),
        ("[fleet]\nendpoints = [\"http://198.51.100.11:2379\"]\nendpoint = 1\n", "fleet", "did you mean \"endpoints\""),
        ("[fleet]\nendpoints = [\"http://198.51.100.11:2379\"]\nusername = \"pknock\"\n", "fleet.password_file", "together"),
        ("[fleet]\nendpoints = [\"https://198.51.100.11:2379\"]\ncert_file = \"/etc/pknock/c.pem\"\n", "fleet.key_file", "together"),
        ("[fleet]\nendpoints = [\"http://198.51.100.11:2379\"]\nusername = \"u\"\npassword_file = \"/etc/pknock/missing\"\n", "fleet.password_file", "missing"),
        ("fleet = 3\n", "fleet", "expected a [fleet] table"),
    ])
    func refusals(text: String, field: String, message: String) {
        let errors = Fixture.errors(text + "\n" + Self.rule, secrets: Self.secrets)
        #expect(errors.contains { $0.field == field && $0.message.contains(message) }, "\(errors)")
    }

    @Test func aClearTextPasswordIsWarnedAbout() throws {
        let configuration = try Fixture.load(
            Self.rule + """
                [fleet]
                endpoints = ["http://198.51.100.11:2379"]
                username = "pknock"
                password_file = "/etc/pknock/etcd-password"
                """, secrets: Self.secrets)
        #expect(configuration.warnings.contains { $0.message.contains("clear text") })
        // The password never shows in diagnostics.
        #expect(!configuration.warnings.map(\.description).joined().contains("s3cret"))
    }
}
