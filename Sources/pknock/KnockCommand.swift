import ArgumentParser
import Foundation
import KnockCore
import Netfilter

/// `pknock knock`: sends a knock sequence or one SPA packet.
struct KnockCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "knock",
        abstract: "Send a knock sequence, or one single-packet-authorization (SPA) packet.",
        discussion: """
            Sequence: each PORT is a TCP SYN (a non-blocking connect, no root needed) or, with :udp or \
            --udp, a UDP datagram, sent in order with --delay between them.
              pknock knock server.example 2002 2001 2004
              pknock knock server.example 7000:udp 8000:tcp --delay 100

            SPA: one UDP datagram to the one knock port, in the original PortKnockO wire format \
            (sha256: 64 hex digits of HMAC-SHA256 and a newline; md5: 32 hex digits and a newline). The \
            MAC binds the address the server will see: by default the local address the kernel uses \
            toward HOST; behind NAT give the public one with --source-ip. The secret comes from \
            --secret-file, or the PKNOCK_SECRET environment variable.
              pknock knock --spa --secret-file ~/.config/pknock/ftp.open server.example 4000
            """
    )

    @Argument(help: "The server: an IPv4 or IPv6 address or a host name.")
    var host: String

    @Argument(help: ArgumentHelp("Knock ports, in order: PORT, PORT:tcp or PORT:udp.", valueName: "port"))
    var ports: [String]

    @Flag(name: .long, help: "Knock with UDP where a port gives no protocol (default TCP).")
    var udp = false

    @Option(name: .long, help: ArgumentHelp("Milliseconds between knocks.", valueName: "ms"))
    var delay: Int = 20

    @Flag(name: .customShort("4"), help: "Use IPv4 only.")
    var ipv4Only = false

    @Flag(name: .customShort("6"), help: "Use IPv6 only.")
    var ipv6Only = false

    @Flag(name: .long, help: "Send one SPA packet instead of a sequence.")
    var spa = false

    @Option(name: .long, help: "SPA format: sha256 (xt_pknock --opensecret) or md5 (the original --secure).")
    var format: SPAFormat = .sha256

    @Option(name: .long, help: ArgumentHelp("File holding the SPA secret (one trailing newline is ignored).", valueName: "file"))
    var secretFile: String?

    @Flag(name: .long, help: "Send the close knock (use the close secret) instead of the open knock.")
    var close = false

    @Option(name: .long, help: ArgumentHelp("The address the server sees, to put into the MAC (e.g. behind NAT).", valueName: "address"))
    var sourceIP: String?

    @Flag(name: .long, help: "Print what would be sent, send nothing.")
    var dryRun = false

    func validate() throws {
        if ipv4Only && ipv6Only { throw ValidationError("-4 and -6 exclude each other") }
        if delay < 0 || delay > 60_000 { throw ValidationError("--delay must be 0 to 60000 milliseconds") }
        if ports.isEmpty { throw ValidationError("give at least one knock port") }
        if spa && ports.count != 1 { throw ValidationError("SPA sends one packet: give exactly one port") }
        for port in ports { _ = try parsePort(port) }
        if let sourceIP, PeerAddress(sourceIP) == nil { throw ValidationError("--source-ip: '\(sourceIP)' is not an IP address") }
    }

    func parsePort(_ text: String) throws -> ServicePort {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let port = Port(parts[0]) else {
            throw ValidationError("'\(text)' is not a port (1-65535, optionally :tcp or :udp)")
        }
        if parts.count == 2 {
            guard let transport = TransportProtocol(name: parts[1]) else {
                throw ValidationError("'\(text)': the protocol must be tcp or udp")
            }
            if spa && transport != .udp { throw ValidationError("SPA knocks are UDP only") }
            return ServicePort(port, transport)
        }
        return ServicePort(port, spa || udp ? .udp : .tcp)
    }

    func run() throws {
        let family: KnockSockets.FamilyPreference = ipv4Only ? .ipv4 : ipv6Only ? .ipv6 : .any
        let addresses: [[UInt8]]
        do {
            addresses = try KnockSockets.resolve(host, family: family)
        } catch {
            throw failure("\(error)")
        }
        guard let server = addresses.first, let serverAddress = PeerAddress(bytes: server) else {
            throw failure("\(host) has no \(ipv4Only ? "IPv4 " : ipv6Only ? "IPv6 " : "")address")
        }
        let knocks = try ports.map(parsePort)
        if spa {
            try sendSPA(to: server, serverAddress: serverAddress, port: knocks[0])
            return
        }
        for (index, knock) in knocks.enumerated() {
            if index > 0 && delay > 0 { usleep(UInt32(delay) * 1000) }
            if dryRun {
                print("would knock \(serverAddress) \(knock)")
                continue
            }
            do {
                switch knock.transport {
                case .tcp: try KnockSockets.sendSYN(to: server, port: knock.port.rawValue)
                case .udp: try KnockSockets.sendDatagram([0], to: server, port: knock.port.rawValue)
                }
            } catch {
                throw failure("\(error)")
            }
        }
    }

    func sendSPA(to server: [UInt8], serverAddress: PeerAddress, port: ServicePort) throws {
        let secret = try readSecret()
        let source: PeerAddress
        if let sourceIP, let given = PeerAddress(sourceIP) {
            source = given
        } else {
            do {
                let local = try KnockSockets.localAddress(toward: server, port: port.port.rawValue)
                guard let address = PeerAddress(bytes: local) else { throw failure("no local address toward \(serverAddress)") }
                source = address
            } catch let error as NetfilterError {
                throw failure("\(error)")
            }
        }
        let minute = WallTime(secondsSinceEpoch: Int64(time(nil))).epochMinute
        let payload = SPAKey(format: format, secret: secret).payload(source: source, epochMinute: minute)
        if dryRun {
            print("would send \(close ? "close" : "open") SPA (\(format), \(payload.count) bytes, MAC for \(source), minute \(minute)) to \(serverAddress) \(port)")
            return
        }
        do {
            try KnockSockets.sendDatagram(payload, to: server, port: port.port.rawValue)
        } catch {
            throw failure("\(error)")
        }
    }

    func readSecret() throws -> Secret {
        if let secretFile {
            guard let data = FileManager.default.contents(atPath: secretFile) else {
                throw failure("cannot read the secret file \(secretFile)")
            }
            var bytes = [UInt8](data)
            if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            guard !bytes.isEmpty else { throw failure("the secret file \(secretFile) is empty") }
            return Secret(bytes: bytes)
        }
        if let text = ProcessInfo.processInfo.environment["PKNOCK_SECRET"], !text.isEmpty {
            return Secret(text)
        }
        throw ValidationError("SPA needs a secret: --secret-file FILE or the PKNOCK_SECRET environment variable")
    }

    /// Prints `message` as pknock's error; the caller throws the returned exit code (status 1).
    func failure(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("pknock: \(message)\n".utf8))
        return ExitCode(1)
    }
}

extension SPAFormat: ExpressibleByArgument {}
