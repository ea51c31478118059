import Foundation
import KnockConfig
import KnockCore
import Testing

@testable import pknock

/// `pknock translate` on the original's documentation examples and knockd's sample configuration.
@Suite struct TranslateTests {
    /// The examples of xt_pknock's documentation (and DESIGN.md), as iptables commands.
    static let xtPknockExamples = """
        iptables -A INPUT -p tcp -m pknock --knockports 2002,2001,2004 --name SSH --time 10 --strict --autoclose 60 --dport 22 -j ACCEPT
        iptables -A INPUT -p udp -m pknock --knockports 2000 --name FTP --opensecret foo-open-secret --closesecret bar-close-secret -j DROP
        iptables -A INPUT -p tcp -m pknock --checkip --name FTP --dport 21 -j ACCEPT
        """

    /// knockd's sample configuration as Debian ships it in /etc/knockd.conf (knockd 0.8).
    static let knockdSample = """
        [options]
        \tUseSyslog

        [openSSH]
        \tsequence    = 7000,8000,9000
        \tseq_timeout = 5
        \tcommand     = /sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
        \ttcpflags    = syn

        [closeSSH]
        \tsequence    = 9000,8000,7000
        \tseq_timeout = 5
        \tcommand     = /sbin/iptables -D INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
        \ttcpflags    = syn

        [openHTTPS]
        \tsequence    = 12345,54321,24680,13579
        \tseq_timeout = 5
        \tcommand     = /usr/local/sbin/knock_add -i -c INPUT -p tcp -d 443 -f %IP%
        \ttcpflags    = syn
        """

    /// knockd's man page example with start/stop commands and a command timeout.
    static let knockdStartStop = """
        [options]
        \tlogfile = /var/log/knockd.log

        [opencloseSSH]
        \tsequence      = 2222:udp,3333:tcp,4444:udp
        \tseq_timeout   = 15
        \ttcpflags      = syn,ack
        \tstart_command = /sbin/iptables -A INPUT -s %IP% -p tcp --syn --dport 22 -j ACCEPT
        \tcmd_timeout   = 10
        \tstop_command  = /sbin/iptables -D INPUT -s %IP% -p tcp --syn --dport 22 -j ACCEPT

        [otp]
        \tone_time_sequences = /etc/knockd/otp
        \tsequence = 1,2
        """

    func load(_ toml: String) throws -> Configuration {
        try ConfigLoader.parseTOML(toml, file: "/tmp/translated.toml", secrets: InMemorySecretSource())
    }

    @Test func theOriginalsExamplesTranslateToAnEquivalentConfiguration() throws {
        let translated = try Translation.iptables(Self.xtPknockExamples, file: "xt.rules")
        let direct = try ConfigLoader.parseRulesFile(Self.xtPknockExamples, file: "xt.rules")
        let reloaded = try load(translated.toml)
        #expect(reloaded.rules == direct.rules)
        #expect(translated.toml.contains("name = \"SSH\"\nknock = [2002, 2001, 2004]\ntime = \"10s\"\nstrict = true\nautoclose = \"1h\"\nprotect = [22]\n"))
        #expect(translated.toml.contains("knock = [\"2000:udp\"]\nprotect = [21]\n"))
        #expect(translated.warnings.contains { $0.contains("rule FTP: the secrets were inline") })
    }

    /// xt_pknock let a non-strict rule take any number of wrong knocks; the TOML default is a budget of
    /// 8, so the translation says 0 out loud (and why) to stay equivalent.
    @Test func aNonStrictXtPknockRuleKeepsItsUnlimitedWrongKnocks() throws {
        let rules = "-A INPUT -p tcp -m pknock --knockports 3001,3002,3003 --name WEB --time 10\n"
        let translated = try Translation.iptables(rules, file: "xt.rules")
        #expect(translated.toml.contains("max_wrong_knocks = 0\n"))
        #expect(translated.toml.contains("# NOTE: xt_pknock's behaviour is kept: any number of wrong knocks"))
        #expect(translated.warnings.contains { $0.hasPrefix("rule WEB: xt_pknock's behaviour is kept") })
        #expect(try load(translated.toml).rules == ConfigLoader.parseRulesFile(rules, file: "xt.rules").rules)
        // knockd doors get pknock's budget, as a hand-written rule: nothing to write.
        let door = Translation.knockd(Self.knockdSample, file: "knockd.conf")
        #expect(!door.toml.contains("max_wrong_knocks"))
        #expect(try load(door.toml).rules.allSatisfy { $0.maxWrongKnocks == Rule.defaultMaxWrongKnocks })
    }

    @Test func knockdsSampleConfigTranslates() throws {
        let translated = Translation.knockd(Self.knockdSample, file: "/etc/knockd.conf")
        let configuration = try load(translated.toml)
        #expect(configuration.rules.map(\.name.rawValue) == ["openSSH", "openHTTPS"])
        let ssh = configuration.rules[0]
        #expect(ssh.knockSequence.map(\.description) == ["7000:tcp", "8000:tcp", "9000:tcp"])
        #expect(ssh.maxKnockGap == .seconds(5))
        #expect(ssh.protectedPorts.map(\.description) == ["22:tcp"])
        #expect(configuration.hooks[ssh.name] == nil, "the iptables ACCEPT command became protect")
        let https = configuration.rules[1]
        #expect(configuration.hooks[https.name]?.onOpen == "/usr/local/sbin/knock_add -i -c INPUT -p tcp -d 443 -f %IP%")
        #expect(translated.warnings.contains { $0.contains("[closeSSH] removes an iptables rule") })
        #expect(translated.warnings.contains { $0.contains("usesyslog") })
        #expect(translated.warnings.contains { $0.contains("seq_timeout 5") })
    }

    @Test func startStopCommandsTimeoutsAndUnsupportedKeys() throws {
        let translated = Translation.knockd(Self.knockdStartStop, file: "knockd.conf")
        let configuration = try load(translated.toml)
        let rule = try #require(configuration.rules.first { $0.name.rawValue == "opencloseSSH" })
        #expect(rule.knockSequence.map(\.description) == ["2222:udp", "3333:tcp", "4444:udp"])
        #expect(rule.autoclose == .seconds(10))
        #expect(rule.protectedPorts.map(\.description) == ["22:tcp"])
        #expect(configuration.hooks[rule.name] == nil, "the matching iptables -D stop command is implied by autoclose")
        #expect(translated.warnings.contains { $0.contains("tcpflags = syn,ack") })
        #expect(translated.warnings.contains { $0.contains("one_time_sequences") })
        #expect(translated.warnings.contains { $0.contains("logfile") })
    }

    @Test func otherCommandsBecomeHooks() throws {
        let text =
            "[web]\nsequence = 1000,2000\nstart_command = /usr/bin/systemctl start nginx\ncmd_timeout = 300\nstop_command = /usr/bin/systemctl stop nginx\n"
        let configuration = try load(Translation.knockd(text, file: "k").toml)
        let name = try #require(RuleName(rawValue: "web"))
        #expect(configuration.hooks[name] == RuleHooks(onOpen: "/usr/bin/systemctl start nginx", onClose: "/usr/bin/systemctl stop nginx"))
        #expect(configuration.rules.first?.autoclose == .seconds(300))
    }

    @Test func formatsAreDetected() {
        #expect(Translation.detect(Self.knockdSample) == .knockd)
        #expect(Translation.detect(Self.xtPknockExamples) == .iptables)
    }

    @Test func quotingKeepsCommandsIntact() throws {
        let text = "[q]\nsequence = 1\ncommand = echo \"a\\b\" 'c'\n"
        let configuration = try load(Translation.knockd(text, file: "k").toml)
        #expect(configuration.hooks[RuleName(rawValue: "q")!]?.onOpen == "echo \"a\\b\" 'c'")
    }

    @Test func theRealSampleFileWhenInstalled() throws {
        let path = "/etc/knockd.conf"
        guard let data = FileManager.default.contents(atPath: path) else {
            try Test.cancel("knockd is not installed (no /etc/knockd.conf)")
        }
        let translated = Translation.knockd(String(decoding: data, as: UTF8.self), file: path)
        #expect(try !load(translated.toml).rules.isEmpty)
    }
}
