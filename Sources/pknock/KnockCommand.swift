import ArgumentParser
import Foundation
import KnockConfig
import KnockCore
import KnockPOSIX

/// `pknock knock`: sends a knock sequence or one SPA packet, optionally from a profile, and can
/// wait for the protected port to open.
struct KnockCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "knock",
        abstract: "Send a knock sequence, or one single-packet-authorization (SPA) packet.",
        usage: """
            pknock knock [options] <host> <port> ...
            pknock knock [options] --spa <host> <port>
            pknock knock [options] --spa2 --client-id <id> --key-file <file> --rule <rule> <host> <port>
            pknock knock [options] --fwknop --key-file <file> --access <proto/port> <host> [<port>]
            pknock knock [options] <profile>
            """,
        discussion: """
            Sequence: each PORT is a TCP SYN (a non-blocking connect, no root needed) or, with :udp or \
            --udp, a UDP datagram, sent in order with --delay between them.
              pknock knock server.example 2002 2001 2004
              pknock knock -6 server.example 7000:udp 8000:tcp --delay 100

            SPA: one UDP datagram to the one knock port, in the original PortKnockO wire format \
            (sha256: 64 hex digits of HMAC-SHA256 and a newline, 65 bytes; md5: 32 hex digits of \
            HMAC-MD5 and a newline). The MAC binds the address the server will see: by default the \
            local address the kernel uses toward HOST; behind NAT give the public one with --source-ip. \
            The secret comes from --secret-file (a file only you can read, as for ssh keys), a \
            profile's open_secret_file (close_secret_file with --close), the PKNOCK_SECRET environment \
            variable, or a prompt on the terminal; --secret TEXT works but warns, as other users can see it.
              pknock knock --spa --secret-file ftp.open server.example 4000
              pknock knock --spa --close --secret-file ftp.close server.example 4000

            SPA v2 (--spa2, Docs/spa-v2.md): one UDP datagram naming the client (--client-id), the \
            rule (--rule, the server's rule name), a timestamp and a random nonce, optionally the \
            address to open (--address, behind NAT; the server must allow it), signed with the client's \
            own key from `pknock keygen`: --key-file FILE, an Ed25519 private key (the default \
            --key-type ed25519) or a shared HMAC key (--key-type hmac), readable only by you. \
            The clocks of client and server must agree within a minute.
              pknock knock --spa2 --client-id laptop --key-file ~/.config/pknock/laptop --rule SSH server.example 4500

            fwknop (--fwknop): one UDP datagram as fwknop 2.x clients send it (AES-256-CBC and \
            HMAC-SHA256, the keys from --key-file: KEY_BASE64 and HMAC_KEY_BASE64 lines as `fwknop \
            --key-gen` prints them), to PORT (default 62201). It opens pknockd's spa = "fwknop" rules \
            and fwknopd alike. --access lists the ports (tcp/22 or tcp/22,udp/53); --address the IPv4 \
            address to open (default: the local address toward HOST; 0.0.0.0 for the address the \
            server sees), --user the user name (default $USER), --fw-timeout the seconds to ask for.
              pknock knock --fwknop --key-file ~/.fwknop.keys --access tcp/22 server.example

            Profiles: a single argument names a [profile.NAME] in ~/.config/pknock/client.toml \
            ($XDG_CONFIG_HOME/pknock/client.toml when set, or --profiles FILE). Keys: host, knock \
            (ports as in pknock.toml), udp, delay, family ("ipv4", "ipv6"), spa (true, or \
            "sha256"/"md5"/"v2"/"fwknop"), format, open_secret_file, close_secret_file (relative to the profile \
            file), source_ip, wait (PORT or "PORT:SECONDS"); for SPA v2 client_id, key_file, key_type, \
            rule, address; for fwknop key_file, access, address, user. Options on the command line override the profile.
              pknock knock work-ssh

            --wait PORT[:SECONDS] probes PORT over TCP after knocking until it answers (prints "open") \
            or SECONDS (default 5) pass (prints "still closed after N s"). --dry-run prints what would \
            be sent (for SPA the payload and the epoch minute) and sends nothing.

            Exit status: 0 sent (and, with --wait, the port is open); 1 the port is still closed after \
            --wait, or the host cannot be resolved, the secret or profile file cannot be used, or \
            sending failed (message on standard error); 64 bad usage: a bad port or option, or an \
            unknown profile.
            """
    )

    @Argument(help: "The server (an IPv4 or IPv6 address or a host name), or the name of a profile.")
    var host: String

    @Argument(help: ArgumentHelp("Knock ports, in order: PORT, PORT:tcp or PORT:udp.", valueName: "port"))
    var ports: [String] = []

    @Flag(name: .long, help: "Knock with UDP where a port gives no protocol (default TCP).")
    var udp = false

    @Option(name: .long, help: ArgumentHelp("Milliseconds between knocks (default 20).", valueName: "ms"))
    var delay: Int?

    @Flag(name: .customShort("4"), help: "Use IPv4 only.")
    var ipv4Only = false

    @Flag(name: .customShort("6"), help: "Use IPv6 only.")
    var ipv6Only = false

    @Flag(name: .long, help: "Send one SPA packet instead of a sequence.")
    var spa = false

    @Option(name: .long, help: "SPA format: sha256 (xt_pknock --opensecret, the default) or md5 (the original --secure).")
    var format: SPAFormat?

    @Option(name: .long, help: ArgumentHelp("File holding the SPA secret (one trailing newline is ignored).", valueName: "file"))
    var secretFile: String?

    @Option(name: .long, help: ArgumentHelp("The SPA secret itself (visible to other users: prefer --secret-file).", valueName: "text"))
    var secret: String?

    @Flag(name: .long, help: "Send the close knock (a profile's close secret) instead of the open knock.")
    var close = false

    @Option(
        name: .customLong("source-ip"),
        help: ArgumentHelp("The address the server sees, to put into the MAC (e.g. behind NAT).", valueName: "address"))
    var sourceIP: String?

    @Flag(name: .long, help: "Send one SPA v2 packet (per-client key, see --client-id, --key-file, --rule).")
    var spa2 = false

    @Option(name: .customLong("client-id"), help: ArgumentHelp("SPA v2: the client id the server knows the key by.", valueName: "id"))
    var clientID: String?

    @Option(
        name: .customLong("key-file"),
        help: ArgumentHelp("SPA v2: the client key file from `pknock keygen` (mode 0600).", valueName: "file"))
    var keyFile: String?

    @Option(name: .customLong("key-type"), help: "SPA v2: what --key-file holds: ed25519 (default) or hmac.")
    var keyType: KeygenCommand.KeyType?

    @Option(name: .long, help: ArgumentHelp("SPA v2: the server's rule to open.", valueName: "rule"))
    var rule: String?

    @Option(name: .long, help: ArgumentHelp("SPA v2: the address to open instead of the packet's source.", valueName: "address"))
    var address: String?

    @Flag(name: .long, help: "Send one fwknop SPA packet (see --key-file, --access).")
    var fwknop = false

    @Option(name: .long, help: ArgumentHelp("fwknop: the ports to ask for, e.g. tcp/22 or tcp/22,udp/53.", valueName: "proto/port"))
    var access: String?

    @Option(name: .long, help: ArgumentHelp("fwknop: the user name the packet carries (default $USER).", valueName: "name"))
    var user: String?

    @Option(name: .customLong("fw-timeout"), help: ArgumentHelp("fwknop: the seconds of access to ask for.", valueName: "seconds"))
    var fwTimeout: Int?

    @Option(help: .hidden)
    var timestamp: Int64?

    @Option(name: .long, help: ArgumentHelp("After knocking, wait until TCP PORT answers (default 5 s).", valueName: "port[:seconds]"))
    var wait: String?

    @Option(name: .long, help: ArgumentHelp("The profile file (default ~/.config/pknock/client.toml).", valueName: "file"))
    var profiles: String?

    @Flag(name: .long, help: "Print what would be sent, send nothing.")
    var dryRun = false

    @Flag(name: [.short, .long], help: "Print each packet as it is sent.")
    var verbose = false

    @Option(help: .hidden)
    var epochMinute: Int64?

    /// The parsed command line as plain values.
    var options: KnockOptions {
        KnockOptions(
            host: host, ports: ports, udp: udp, delay: delay, ipv4Only: ipv4Only, ipv6Only: ipv6Only, spa: spa,
            format: format, secretFile: secretFile, secret: secret, close: close, sourceIP: sourceIP, wait: wait,
            spa2: spa2, clientID: clientID, keyFile: keyFile, keyType: keyType, rule: rule, address: address,
            fwknop: fwknop, access: access, user: user, fwTimeout: fwTimeout)
    }

    func validate() throws {
        // Checks that need no profile; the rest happen in run() once a profile may have been read.
        if ipv4Only && ipv6Only { throw ValidationError("-4 and -6 exclude each other") }
        guard !ports.isEmpty || fwknop else { return }
        do {
            _ = try KnockPlan.make(options, profile: nil, environment: [:], stdinIsTerminal: true)
        } catch {
            throw ValidationError(error.message)
        }
    }

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        var profile: ClientProfile?
        if ports.isEmpty && !fwknop {
            profile = try findProfile(environment: environment)
        }
        let plan: KnockPlan
        do {
            plan = try KnockPlan.make(
                options, profile: profile, environment: environment, stdinIsTerminal: TerminalPrompt.standardInputIsTerminal)
        } catch {
            throw ValidationError(error.message)
        }
        let (server, serverAddress) = try resolve(plan)
        if let fwknopPlan = plan.fwknop {
            try sendFwknop(fwknopPlan, to: server, serverAddress: serverAddress, port: plan.knocks[0])
        } else if let spa2Plan = plan.spa2 {
            try sendSPA2(spa2Plan, to: server, serverAddress: serverAddress, port: plan.knocks[0])
        } else if let spaPlan = plan.spa {
            try sendSPA(spaPlan, to: server, serverAddress: serverAddress, port: plan.knocks[0])
        } else {
            try sendSequence(plan, to: server, serverAddress: serverAddress)
        }
        if let wait = plan.wait {
            try waitForPort(wait, on: server, serverAddress: serverAddress)
        }
    }

    // MARK: Steps

    /// The profile named by the single argument; a usage error when there is none.
    func findProfile(environment: [String: String]) throws -> ClientProfile {
        guard let path = ClientProfiles.path(explicit: profiles, environment: environment) else {
            throw ValidationError("give at least one knock port (no HOME to find profiles in)")
        }
        let all: [ClientProfile]
        do {
            all = try ClientProfiles.load(path: path, mustExist: profiles != nil, environment: environment)
        } catch {
            throw failure(error.description)
        }
        guard let found = all.first(where: { $0.name == host }) else {
            let known = all.isEmpty ? "" : " (profiles: \(all.map(\.name).joined(separator: ", ")))"
            throw ValidationError("give at least one knock port, or the name of a profile in \(path)\(known); '\(host)' is neither")
        }
        return found
    }

    func resolve(_ plan: KnockPlan) throws -> ([UInt8], PeerAddress) {
        let family: KnockSockets.FamilyPreference =
            switch plan.family {
            case .any: .any
            case .ipv4: .ipv4
            case .ipv6: .ipv6
            }
        let addresses: [[UInt8]]
        do {
            addresses = try KnockSockets.resolve(plan.host, family: family)
        } catch {
            throw failure(error.description)
        }
        guard let server = addresses.first, let serverAddress = PeerAddress(bytes: server) else {
            let family = plan.family == .ipv4 ? "IPv4 " : plan.family == .ipv6 ? "IPv6 " : ""
            throw failure("\(plan.host) has no \(family)address")
        }
        return (server, serverAddress)
    }

    func sendSequence(_ plan: KnockPlan, to server: [UInt8], serverAddress: PeerAddress) throws {
        for (index, knock) in plan.knocks.enumerated() {
            if index > 0 && plan.delayMilliseconds > 0 {
                if dryRun {
                    print("would wait \(plan.delayMilliseconds) ms")
                } else {
                    usleep(UInt32(plan.delayMilliseconds) * 1000)
                }
            }
            let line = KnockReport.knock(knock, to: serverAddress)
            if dryRun {
                print("would send " + line)
                continue
            }
            do {
                switch knock.transport {
                case .tcp: try KnockSockets.sendSYN(to: server, port: knock.port.rawValue)
                case .udp: try KnockSockets.sendDatagram([0], to: server, port: knock.port.rawValue)
                }
            } catch {
                throw failure(describe(error))
            }
            if verbose { print("sent " + line) }
        }
    }

    func sendSPA(_ plan: SPAPlan, to server: [UInt8], serverAddress: PeerAddress, port: ServicePort) throws {
        let secret = try readSecret(plan)
        let source: PeerAddress
        if let given = plan.sourceIP {
            source = given
        } else {
            do {
                let local = try KnockSockets.localAddress(toward: server, port: port.port.rawValue)
                guard let address = PeerAddress(bytes: local) else { throw failure("no local address toward \(serverAddress)") }
                source = address
            } catch let error as SystemCallError {
                throw failure(describe(error))
            }
        }
        let minute = epochMinute ?? WallTime(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)).epochMinute
        let payload = SPAKey(format: plan.format, secret: secret).payload(source: source, epochMinute: minute)
        let lines = KnockReport.spa(plan, payload: payload, source: source, epochMinute: minute, to: serverAddress, port: port)
        try sendDatagram(payload, report: lines, to: server, port: port)
    }

    /// Sends one SPA datagram, or with --dry-run prints what would go (`report`: what, then the bytes).
    private func sendDatagram(_ payload: [UInt8], report lines: [String], to server: [UInt8], port: ServicePort) throws {
        if dryRun {
            print("would send " + lines[0])
            print(lines[1])
            return
        }
        do {
            try KnockSockets.sendDatagram(payload, to: server, port: port.port.rawValue)
        } catch {
            throw failure(describe(error))
        }
        if verbose { print("sent " + lines[0]) }
    }

    /// Sends one SPA v2 packet: the key file read now, the current time and a fresh nonce.
    func sendSPA2(_ plan: SPAv2Plan, to server: [UInt8], serverAddress: PeerAddress, port: ServicePort) throws {
        let contents: [UInt8]
        do {
            contents = try FileSecretSource().contents(ofSecretFile: plan.keyFile)
        } catch {
            throw failure("key file: \(error.message)")
        }
        let key: SPAv2.SigningKey
        do {
            key = try SPAv2Client.signingKey(fileContents: contents, type: plan.keyType)
        } catch {
            throw failure("key file: \(plan.keyFile) \(error.message)")
        }
        let now = timestamp ?? Int64(Date().timeIntervalSince1970)
        let packet: [UInt8]
        do {
            packet = try SPAv2.encode(SPAv2Client.message(plan, timestamp: now, nonce: SPAv2Client.randomNonce()), key: key)
        } catch {
            throw failure("cannot make the SPA v2 packet: \(error)")
        }
        let lines = SPAv2Client.report(plan, packet: packet, timestamp: now, to: serverAddress, port: port)
        try sendDatagram(packet, report: lines, to: server, port: port)
    }

    /// Sends one fwknop packet: the key file read now, the current time, a fresh salt and random value.
    func sendFwknop(_ plan: FwknopPlan, to server: [UInt8], serverAddress: PeerAddress, port: ServicePort) throws {
        let contents: [UInt8]
        do {
            contents = try FileSecretSource().contents(ofSecretFile: plan.keyFile)
        } catch {
            throw failure("key file: \(error.message)")
        }
        let keys: Fwknop.Keys
        do {
            keys = try Fwknop.Keys(parsing: String(decoding: contents, as: UTF8.self))
        } catch {
            throw failure("key file: \(plan.keyFile): \(error.message)")
        }
        let address: PeerAddress
        if let given = plan.address {
            address = given
        } else {
            let local: [UInt8]
            do {
                local = try KnockSockets.localAddress(toward: server, port: port.port.rawValue)
            } catch {
                throw failure(describe(error))
            }
            guard let found = PeerAddress(bytes: local), found.isIPv4 else {
                throw failure("fwknop access requests carry an IPv4 address: give --address (0.0.0.0 for the source the server sees)")
            }
            address = found
        }
        var generator = SystemRandomNumberGenerator()
        let message = FwknopPacket.message(
            plan, address: address, timestamp: timestamp ?? Int64(Date().timeIntervalSince1970), random: Fwknop.randomValue(using: &generator))
        let packet: [UInt8]
        do {
            packet = try Fwknop.encode(message, keys: keys, salt: FwknopPacket.randomSalt())
        } catch {
            throw failure("cannot make the fwknop packet: \(error)")
        }
        let lines = FwknopPacket.report(message, packet: packet, to: serverAddress, port: port)
        try sendDatagram(packet, report: lines, to: server, port: port)
    }

    /// The secret `plan` names, read now; exit status 1 when it cannot be used or is empty.
    func readSecret(_ plan: SPAPlan) throws -> Secret {
        var bytes: [UInt8]
        switch plan.secret {
        case .commandLine(let secret):
            warn(
                "warning: a secret on the command line is visible to other users and kept in shell history; use --secret-file or PKNOCK_SECRET"
            )
            return secret
        case .environment(let secret):
            return secret
        case .file(let path):
            do {
                bytes = Syntax.secret(fileContents: try FileSecretSource().contents(ofSecretFile: path))
            } catch {
                throw failure("secret file: \(error.message)")
            }
            guard !bytes.isEmpty else { throw failure("secret file: \(path) is empty") }
        case .prompt:
            do {
                bytes = try TerminalPrompt.readHiddenLine(prompt: "\(plan.close ? "Close" : "Open") secret for \(host): ")
            } catch {
                throw failure(describe(error))
            }
            guard !bytes.isEmpty else { throw failure("no secret entered") }
        }
        return Secret(bytes: bytes)
    }

    /// Probes `wait.port` until a TCP connection completes or the time is up; exit status 1 if closed.
    func waitForPort(_ wait: WaitSpec, on server: [UInt8], serverAddress: PeerAddress) throws {
        let target = "\(serverAddress) port \(wait.port)"
        if dryRun {
            print("would wait up to \(wait.seconds) s for \(target) to answer")
            return
        }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(wait.seconds)
        // A dropped SYN is retransmitted by the kernel only after a second; a fresh connect every
        // attempt notices a new grant sooner. Timeouts grow so that slow paths still get through.
        var attemptMilliseconds: Int64 = 250
        while true {
            let remaining = clock.now.duration(to: deadline)
            let remainingMilliseconds = remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000
            if remainingMilliseconds <= 0 { break }
            let timeout = Int32(min(attemptMilliseconds, remainingMilliseconds))
            let started = clock.now
            if KnockSockets.canConnect(to: server, port: wait.port.rawValue, timeoutMilliseconds: timeout) {
                print("\(target): open")
                return
            }
            attemptMilliseconds = min(attemptMilliseconds * 2, 2000)
            // A refused connection returns at once: pace the attempts.
            let pause = Duration.milliseconds(100) - started.duration(to: clock.now)
            if pause > .zero && clock.now + pause < deadline { Thread.sleep(forTimeInterval: Double(pause.components.attoseconds) / 1e18) }
        }
        print("\(target): still closed after \(wait.seconds) s")
        throw ExitCode(1)
    }

    // MARK: Errors

    private func describe(_ error: SystemCallError) -> String {
        (error.subject ?? error.operation) + ": " + error.reason
    }

    private func warn(_ message: String) {
        FileHandle.standardError.write(Data("pknock: \(message)\n".utf8))
    }

    /// Prints `message` as pknock's error; the caller throws the returned exit code (status 1).
    func failure(_ message: String) -> ExitCode {
        warn(message)
        return ExitCode(1)
    }
}

extension SPAFormat: ExpressibleByArgument {}
