import Foundation
import KnockCore
import Testing

@testable import pknock

/// Profiles in client.toml, and how a plan combines them with the command line.
@Suite struct ClientProfileTests {
    static let sample = """
        # knocking profiles
        [profile.work-ssh]
        host = "server.example"
        knock = [2002, 2001, "2004:udp"]   # mixed
        delay = 50
        family = "ipv6"
        wait = "22:10"

        [profile."ftp"]
        host = '203.0.113.5'
        knock = [
            "4000",
        ]
        format = "md5"
        open_secret_file = "secrets/ftp.open"
        close_secret_file = "~/ftp.close"
        source_ip = "198.51.100.9"
        """

    static func profiles(_ text: String = sample) throws -> [ClientProfile] {
        try ClientProfiles.parse(text, file: "client.toml", directory: "/home/u/.config/pknock", home: "/home/u")
    }

    static func error(_ text: String) -> String? {
        do {
            _ = try profiles(text)
            return nil
        } catch let error as ClientProfileError {
            return error.description
        } catch {
            return "unexpected \(error)"
        }
    }

    @Test func readsProfiles() throws {
        let all = try Self.profiles()
        #expect(all.map(\.name) == ["work-ssh", "ftp"])
        let ssh = all[0]
        #expect(ssh.host == "server.example")
        #expect(ssh.knock.map { $0.resolved(defaultTransport: .tcp).description } == ["2002:tcp", "2001:tcp", "2004:udp"])
        #expect(ssh.delay == 50)
        #expect(ssh.family == .ipv6)
        #expect(ssh.wait == WaitSpec(port: try #require(Port(rawValue: 22)), seconds: 10))
        #expect(ssh.spa == nil)
        let ftp = all[1]
        #expect(ftp.spa == true, "a secret file implies SPA")
        #expect(ftp.format == .md5)
        #expect(ftp.openSecretFile == "/home/u/.config/pknock/secrets/ftp.open")
        #expect(ftp.closeSecretFile == "/home/u/ftp.close")
        #expect(ftp.sourceIP == PeerAddress("198.51.100.9"))
    }

    // Syntax errors come from KnockConfig's TOML parser, worded as for pknock.toml.
    @Test(arguments: [
        ("[profile.a]\nhost = \"h\"\nknock = [1]\nhots = 1\n", "client.toml:4: profile a: hots: unknown key (did you mean host?)"),
        ("[profile.a]\nknock = [1]\n", "client.toml:1: profile a: host is missing"),
        ("[profile.a]\nhost = \"h\"\n", "client.toml:1: profile a: knock is missing"),
        ("[profile.a]\nhost = \"h\"\nknock = [0]\n", "client.toml:3: profile a: knock: port 0 is out of range (1 to 65535)"),
        ("[profile.a]\nhost = \"h\"\nknock = [1, 2]\nspa = true\n", "client.toml:1: profile a: SPA sends one packet"),
        ("[profile.a]\nhost = \"h\"\nknock = [\"1:tcp\"]\nspa = \"md5\"\n", "client.toml:1: profile a: SPA knocks are UDP only"),
        ("[profile.a]\nhost = \"h\"\nknock = [1]\ndelay = \"5\"\n", "client.toml:4: profile a: delay: expected milliseconds"),
        ("[profile.a]\nhost = \"h\"\nknock = [1]\nfamily = \"inet\"\n", "client.toml:4: profile a: family: expected \"ipv4\", \"ipv6\""),
        ("[profile.a]\nhost = \"h\"\nhost = \"i\"\n", "client.toml:3: duplicate key \"host\" (first defined on line 2)"),
        ("host = \"h\"\n", "client.toml:1: \"host\" must be inside a [profile.NAME] table"),
        ("[server]\n", "client.toml:1: unknown table [server]"),
        ("[[profile]]\n", "client.toml:1: write each profile as [profile.NAME]"),
        ("[profile.a]\n[profile.a]\n", "client.toml:2: table [profile.a] is defined twice (first on line 1)"),
        ("[profile.a]\nhost = \"h\nknock = [1]\n", "client.toml:2: unterminated string"),
        ("[profile.a]\nknock = [1,\n2\n", "client.toml:2: unterminated array"),
        ("[profile.a]\nhost = h\n", "client.toml:2: invalid value (a string needs quotes)"),
        ("[profile.a]\nhost = \"h\" x\n", "client.toml:2: expected the end of the line"),
    ])
    func errorsNameFileLineAndKey(text: String, expected: String) {
        let message = Self.error(text)
        #expect(message?.hasPrefix(expected) == true, "\(message ?? "no error")")
    }

    @Test func locations() {
        #expect(ClientProfiles.path(explicit: "/x.toml", environment: ["HOME": "/h"]) == "/x.toml")
        #expect(ClientProfiles.path(explicit: nil, environment: ["HOME": "/h", "XDG_CONFIG_HOME": "/x"]) == "/x/pknock/client.toml")
        #expect(ClientProfiles.path(explicit: nil, environment: ["HOME": "/h", "XDG_CONFIG_HOME": ""]) == "/h/.config/pknock/client.toml")
        #expect(ClientProfiles.path(explicit: nil, environment: [:]) == nil)
    }

    // MARK: Plans

    @Test func profileFillsThePlanAndTheCommandLineOverrides() throws {
        let ssh = try Self.profiles()[0]
        let plan = try KnockPlan.make(KnockOptions(host: "work-ssh"), profile: ssh, environment: [:], stdinIsTerminal: false)
        #expect(plan.host == "server.example")
        #expect(plan.family == .ipv6)
        #expect(plan.delayMilliseconds == 50)
        #expect(plan.knocks.map(\.description) == ["2002:tcp", "2001:tcp", "2004:udp"])
        #expect(plan.wait?.seconds == 10)
        #expect(plan.profileName == "work-ssh")

        let overridden = try KnockPlan.make(
            KnockOptions(host: "work-ssh", udp: true, delay: 0, ipv4Only: true, wait: "2222"), profile: ssh, environment: [:],
            stdinIsTerminal: false)
        #expect(overridden.family == .ipv4)
        #expect(overridden.delayMilliseconds == 0)
        #expect(overridden.knocks.map(\.description) == ["2002:udp", "2001:udp", "2004:udp"])
        #expect(overridden.wait == WaitSpec(port: try #require(Port(rawValue: 2222)), seconds: 5))
    }

    @Test func defaults() throws {
        let plan = try KnockPlan.make(KnockOptions(host: "h", ports: ["1"]), profile: nil, environment: [:], stdinIsTerminal: false)
        #expect(plan.delayMilliseconds == 20)
        #expect(plan.family == .any)
        #expect(plan.knocks.map(\.description) == ["1:tcp"])
        #expect(plan.wait == nil)
    }

    @Test func closeChoosesTheProfilesCloseSecret() throws {
        let ftp = try Self.profiles()[1]
        let open = try KnockPlan.make(KnockOptions(host: "ftp"), profile: ftp, environment: [:], stdinIsTerminal: false)
        #expect(
            open.spa
                == SPAPlan(
                    format: .md5, close: false, secret: .file("/home/u/.config/pknock/secrets/ftp.open"),
                    sourceIP: PeerAddress("198.51.100.9")))
        #expect(open.knocks.map(\.description) == ["4000:udp"])
        let close = try KnockPlan.make(KnockOptions(host: "ftp", close: true), profile: ftp, environment: [:], stdinIsTerminal: false)
        #expect(close.spa?.secret == .file("/home/u/ftp.close"))
        #expect(close.spa?.close == true)
        // An explicit --secret-file wins; --close then only labels the packet.
        let explicit = try KnockPlan.make(
            KnockOptions(host: "ftp", secretFile: "/k", close: true), profile: ftp, environment: [:], stdinIsTerminal: false)
        #expect(explicit.spa?.secret == .file("/k"))
        #expect(explicit.spa?.close == true)
    }

    @Test func secretOrder() throws {
        let spa = KnockOptions(host: "h", ports: ["4000"], spa: true)
        var options = spa
        options.secret = "inline"
        #expect(
            try KnockPlan.make(options, profile: nil, environment: ["PKNOCK_SECRET": "env"], stdinIsTerminal: true).spa?.secret
                == .commandLine(Secret("inline")))
        #expect(
            try KnockPlan.make(spa, profile: nil, environment: ["PKNOCK_SECRET": "env"], stdinIsTerminal: true).spa?.secret
                == .environment(Secret("env")))
        #expect(try KnockPlan.make(spa, profile: nil, environment: ["PKNOCK_SECRET": ""], stdinIsTerminal: true).spa?.secret == .prompt)
        #expect(throws: ClientUsageError.self) {
            try KnockPlan.make(spa, profile: nil, environment: [:], stdinIsTerminal: false)
        }
    }

    // MARK: The command with a profile file (subprocess, dry run)

    @Test func profileFromXDGConfigHome() throws {
        let scratch = try KnockCommandTests.Scratch()
        defer { scratch.cleanUp() }
        _ = try scratch.write("pknock/client.toml", "[profile.lab]\nhost = \"192.0.2.1\"\nknock = [2002, \"7000:udp\"]\ndelay = 0\n")
        let run = try KnockCommandTests.run(["knock", "--dry-run", "lab"], environment: ["XDG_CONFIG_HOME": scratch.directory])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "would send TCP SYN to 192.0.2.1 port 2002\nwould send UDP datagram (1 byte) to 192.0.2.1 port 7000\n")
    }

    @Test func profileFromHomeWithSPASecretRelativeToTheFile() throws {
        let scratch = try KnockCommandTests.Scratch()
        defer { scratch.cleanUp() }
        _ = try scratch.write(
            ".config/pknock/client.toml",
            "[profile.ftp]\nhost = \"192.0.2.1\"\nknock = [4000]\nopen_secret_file = \"ftp.open\"\nsource_ip = \"192.0.2.2\"\n")
        _ = try scratch.write(".config/pknock/ftp.open", "open-sesame\n")
        let run = try KnockCommandTests.run(
            ["knock", "--dry-run", "--epoch-minute", "29000000", "ftp"], environment: ["HOME": scratch.directory])
        #expect(run.status == 0, "\(run.stderr)")
        let mac = try KnockCommandTests.pythonMAC(format: "sha256", secret: "open-sesame", address: "192.0.2.2", minute: 29_000_000)
        #expect(run.stdout.hasSuffix("payload: \(mac) + newline\n"))
    }

    @Test func unknownProfileIsAUsageError() throws {
        let scratch = try KnockCommandTests.Scratch()
        defer { scratch.cleanUp() }
        let file = try scratch.write("client.toml", "[profile.lab]\nhost = \"192.0.2.1\"\nknock = [1]\n")
        let run = try KnockCommandTests.run(["knock", "--profiles", file, "--dry-run", "nope"])
        #expect(run.status == 64)
        #expect(run.stderr.contains("or the name of a profile in \(file) (profiles: lab); 'nope' is neither"))
    }

    @Test func brokenProfileFileExits1() throws {
        let scratch = try KnockCommandTests.Scratch()
        defer { scratch.cleanUp() }
        let file = try scratch.write("client.toml", "[profile.lab]\nhost = \"192.0.2.1\"\nknock = [1]\nwait = true\n")
        let run = try KnockCommandTests.run(["knock", "--profiles", file, "--dry-run", "lab"])
        #expect(run.status == 1)
        #expect(run.stderr == "pknock: \(file):4: profile lab: wait: expected a port or \"PORT:SECONDS\", found a boolean\n")
        let missing = try KnockCommandTests.run(["knock", "--profiles", scratch.directory + "/none.toml", "lab"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "pknock: \(scratch.directory)/none.toml: no such file\n")
    }
}

/// Profiles that send SPA v2.
@Suite struct ClientProfileSPAv2Tests {
    static let text = """
        [profile.laptop]
        host = "server.example"
        knock = [4500]
        spa = "v2"
        client_id = "laptop"
        key_file = "keys/laptop"
        rule = "SSH"

        [profile.phone]
        host = "server.example"
        knock = ["4500:udp"]
        key_file = "~/phone.key"
        key_type = "hmac"
        client_id = "phone"
        rule = "SSH"
        address = "203.0.113.5"
        """

    @Test func aV2ProfileMakesAV2Plan() throws {
        let profiles = try ClientProfiles.parse(Self.text, file: "client.toml", directory: "/home/u/.config/pknock", home: "/home/u")
        let laptop = try #require(profiles.first)
        let plan = try KnockPlan.make(KnockOptions(host: "laptop"), profile: laptop, environment: [:], stdinIsTerminal: false)
        #expect(plan.spa2?.clientID == "laptop")
        #expect(plan.spa2?.keyFile == "/home/u/.config/pknock/keys/laptop")
        #expect(plan.spa2?.keyType == .ed25519)
        #expect(plan.spa2?.rule.rawValue == "SSH")
        #expect(plan.spa == nil)
        #expect(plan.knocks.map(\.description) == ["4500:udp"])
        let phone = try #require(profiles.last)
        #expect(phone.spa2 == true, "key_file implies SPA v2")
        let phonePlan = try KnockPlan.make(KnockOptions(host: "phone"), profile: phone, environment: [:], stdinIsTerminal: false)
        #expect(phonePlan.spa2?.keyType == .hmac)
        #expect(phonePlan.spa2?.keyFile == "/home/u/phone.key")
        #expect(phonePlan.spa2?.address == PeerAddress("203.0.113.5"))
        // The command line overrides the profile.
        let overridden = try KnockPlan.make(
            KnockOptions(host: "phone", spa2: true, rule: "WEB"), profile: phone, environment: [:], stdinIsTerminal: false)
        #expect(overridden.spa2?.rule.rawValue == "WEB")
    }

    @Test func v1AndV2KeysInOneProfileAreRefused() {
        let text = "[profile.x]\nhost = \"h\"\nknock = [4500]\nkey_file = \"k\"\nopen_secret_file = \"s\"\n"
        #expect(ClientProfileTests.error(text)?.contains("SPA v2 (key_file) and SPA v1 (secrets, format) exclude each other") == true)
    }
}
