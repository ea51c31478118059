import ArgumentParser
import Foundation
import KnockCore
import Testing

@testable import pknock

/// `pknock knock --fwknop` and `spa = "fwknop"` profiles: the plan, and the packet it makes.
@Suite struct FwknopClientTests {
    static func plan(_ arguments: [String], profile: ClientProfile? = nil) throws -> KnockPlan {
        let parsed = try Pknock.parseAsRoot(["knock"] + arguments)
        let command = try #require(parsed as? KnockCommand)
        return try KnockPlan.make(command.options, profile: profile, environment: ["USER": "alice"], stdinIsTerminal: false)
    }

    @Test func defaultsToFwknopsPortAndTheUser() throws {
        let plan = try Self.plan(["--fwknop", "--key-file", "/k", "--access", "tcp/22,udp/53", "192.0.2.1"])
        #expect(plan.knocks == [ServicePort(Fwknop.defaultPort, .udp)])
        #expect(plan.spa == nil && plan.spa2 == nil)
        let fwknop = try #require(plan.fwknop)
        #expect(fwknop.user == "alice")
        #expect(fwknop.access.map(\.description) == ["22:tcp", "53:udp"])
        #expect(fwknop.address == nil)
        let other = try Self.plan(["--fwknop", "--key-file", "/k", "--access", "tcp/22", "--address", "0.0.0.0", "--fw-timeout", "30", "192.0.2.1", "62202"])
        #expect(other.knocks.map(\.description) == ["62202:udp"])
        #expect(other.fwknop?.address == PeerAddress(ipv4: 0))
        #expect(other.fwknop?.timeout == 30)
    }

    @Test(arguments: [
        (["--fwknop", "--access", "tcp/22", "h"], "--fwknop needs --key-file FILE"),
        (["--fwknop", "--key-file", "/k", "h"], "--fwknop needs --access PROTO/PORT"),
        (["--fwknop", "--key-file", "/k", "--access", "tcp22", "h"], "--access: 'tcp22' is not PROTO/PORT"),
        (["--fwknop", "--key-file", "/k", "--access", "tcp/22", "--address", "2001:db8::1", "h"], "is not an IPv4 address"),
        (["--fwknop", "--spa2", "--key-file", "/k", "--access", "tcp/22", "h"], "--fwknop excludes --spa and --spa2"),
        (["--fwknop", "--key-file", "/k", "--access", "tcp/22", "--rule", "SSH", "h"], "--rule does not apply to --fwknop"),
        (["--fwknop", "--key-file", "/k", "--access", "tcp/22", "h", "22:tcp"], "fwknop packets are UDP only"),
        (["--access", "tcp/22", "h", "1"], "--access applies to fwknop packets only: add --fwknop"),
    ])
    func usageErrors(arguments: [String], expected: String) {
        do {
            _ = try Self.plan(arguments)
            Issue.record("\(arguments) was accepted")
        } catch {
            let text = (error as? ClientUsageError)?.message ?? "\(error)"
            #expect(text.contains(expected), "\(text)")
        }
    }

    @Test func aProfileSendsFwknop() throws {
        let text = """
            [profile.lab]
            host = "192.0.2.1"
            knock = ["62201:udp"]
            spa = "fwknop"
            key_file = "lab.keys"
            access = "tcp/22"
            user = "bob"
            """
        let profile = try #require(try ClientProfiles.parse(text, file: "client.toml", directory: "/home/u/.config/pknock", home: "/home/u").first)
        #expect(profile.fwknop == true && profile.spa2 == nil)
        let plan = try Self.plan(["lab"], profile: profile)
        #expect(
            plan.fwknop
                == FwknopPlan(
                    keyFile: "/home/u/.config/pknock/lab.keys", access: [ServicePort(Port(rawValue: 22)!, .tcp)], address: nil, user: "bob", timeout: nil))
    }

    @Test func thePacketOpensForTheServer() throws {
        let plan = FwknopPlan(keyFile: "/k", access: [ServicePort(Port(rawValue: 22)!, .tcp)], address: nil, user: "alice", timeout: 20)
        let message = FwknopPacket.message(plan, address: PeerAddress(ipv4: 0), timestamp: 1_764_072_000, random: "0000000000000042")
        #expect(message.address == nil, "0.0.0.0 goes on the wire as the source")
        #expect(message.type == .clientTimeoutAccess)
        let keys = Fwknop.Keys(encryptionKey: Secret(bytes: Array(0..<32)), hmacKey: Secret(bytes: Array(0..<64)))
        let packet = try Fwknop.encode(message, keys: keys, salt: FwknopPacket.randomSalt())
        #expect(try Fwknop.open(packet, encryptionKey: keys.encryptionKey).get() == message)
        let lines = FwknopPacket.report(message, packet: packet, to: PeerAddress("192.0.2.1")!, port: ServicePort(Fwknop.defaultPort, .udp))
        #expect(lines[0].hasPrefix("fwknop SPA knock (user alice, access 0.0.0.0,tcp/22, timeout 20 s) to 192.0.2.1 port 62201:udp"))
    }
}
