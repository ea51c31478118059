import KnockCore

/// The options of one `pknock knock` command line, as plain values (what `KnockCommand` parsed).
struct KnockOptions: Equatable {
    var host: String
    var ports: [String] = []
    var udp = false
    var delay: Int?
    var ipv4Only = false
    var ipv6Only = false
    var spa = false
    var format: SPAFormat?
    var secretFile: String?
    var secret: String?
    var close = false
    var sourceIP: String?
    var wait: String?
    var spa2 = false
    var clientID: String?
    var keyFile: String?
    var keyType: KeygenCommand.KeyType?
    var rule: String?
    var address: String?
    var fwknop = false
    var access: String?
    var user: String?
    var fwTimeout: Int?
}

/// Where the SPA secret comes from, decided before anything is read.
enum SecretChoice: Equatable {
    /// `--secret TEXT` (accepted with a warning).
    case commandLine(Secret)
    /// A secret file: `--secret-file`, or the profile's open or close secret file.
    case file(String)
    /// The `PKNOCK_SECRET` environment variable.
    case environment(Secret)
    /// Asked for on the terminal with echo off (only when standard input is a terminal).
    case prompt
}

/// The SPA part of a plan.
struct SPAPlan: Equatable {
    /// The wire format.
    var format: SPAFormat
    /// Whether this is the close knock (chooses the profile's close secret; otherwise only a label).
    var close: Bool
    /// Where the secret comes from.
    var secret: SecretChoice
    /// The address to put into the MAC, or nil for the local address the kernel uses toward the server.
    var sourceIP: PeerAddress?
}

/// Everything one `pknock knock` will do, decided before any socket is opened.
///
/// Made from the command line and a profile. Pure: the environment and the terminal check are passed in.
struct KnockPlan: Equatable {
    /// Milliseconds between knocks when neither the command line nor the profile says.
    static let defaultDelay = 20
    /// The longest delay accepted.
    static let maximumDelay = 60_000

    /// The server as given: address or host name.
    var host: String
    /// The address family to resolve and knock over.
    var family: AddressFamilyChoice
    /// The knocks, in order (one UDP port for SPA).
    var knocks: [ServicePort]
    /// Milliseconds between knocks.
    var delayMilliseconds: Int
    /// Set for SPA.
    var spa: SPAPlan?
    /// The port to probe afterwards.
    var wait: WaitSpec?
    /// The profile used, if any.
    var profileName: String?
    /// Set for SPA v2 (`--spa2`); then `spa` is nil.
    var spa2: SPAv2Plan? = nil
    /// Set for fwknop packets (`--fwknop`); then `spa` and `spa2` are nil.
    var fwknop: FwknopPlan? = nil

    /// Combines `options` with `profile` (the command line wins) and checks the result.
    ///
    /// Secret order: `--secret`, `--secret-file`, the profile's secret file for the direction
    /// (`close_secret_file` with `--close`, else `open_secret_file`), `PKNOCK_SECRET`, then a
    /// prompt when standard input is a terminal.
    static func make(
        _ options: KnockOptions, profile: ClientProfile?, environment: [String: String], stdinIsTerminal: Bool
    ) throws(ClientUsageError) -> KnockPlan {
        if options.ipv4Only && options.ipv6Only { throw ClientUsageError("-4 and -6 exclude each other") }
        if let delay = options.delay, !(0...maximumDelay).contains(delay) {
            throw ClientUsageError("--delay must be 0 to \(maximumDelay) milliseconds")
        }
        if options.secret != nil && options.secretFile != nil { throw ClientUsageError("give --secret or --secret-file, not both") }
        if options.spa && options.spa2 { throw ClientUsageError("--spa and --spa2 exclude each other") }
        let useFwknop = options.fwknop || (!options.spa && !options.spa2 && profile?.fwknop == true)
        if useFwknop {
            if options.spa || options.spa2 { throw ClientUsageError("--fwknop excludes --spa and --spa2") }
            return try fwknopPlan(options, profile: profile, environment: environment)
        }
        let fwknopOnly: [(Bool, String)] = [(options.access != nil, "--access"), (options.user != nil, "--user"), (options.fwTimeout != nil, "--fw-timeout")]
        if let (_, name) = fwknopOnly.first(where: \.0) { throw ClientUsageError("\(name) applies to fwknop packets only: add --fwknop") }
        if !options.spa2 {
            let stray: [(Bool, String)] = [
                (options.clientID != nil, "--client-id"), (options.keyFile != nil, "--key-file"), (options.keyType != nil, "--key-type"),
                (options.rule != nil, "--rule"), (options.address != nil, "--address"),
            ]
            if let (_, name) = stray.first(where: \.0) { throw ClientUsageError("\(name) applies to SPA v2 only: add --spa2") }
        }

        let specs = try portSpecs(options, profile: profile)
        if specs.isEmpty { throw ClientUsageError("give at least one knock port") }

        // The command line's --spa wins over a v2 profile, --spa2 over a v1 one.
        let useSPA2 = options.spa2 || (!options.spa && profile?.spa2 == true)
        let spa = useSPA2 || options.spa || profile?.spa == true
        let udp = options.udp || profile?.udp == true
        var knocks: [ServicePort] = []
        for spec in specs {
            if spa && spec.transport == .tcp { throw ClientUsageError("SPA knocks are UDP only") }
            knocks.append(spec.resolved(defaultTransport: spa || udp ? .udp : .tcp))
        }

        var wait: WaitSpec? = profile?.wait
        if let text = options.wait {
            switch WaitSpec.parse(text) {
            case .success(let spec): wait = spec
            case .failure(let problem): throw problem
            }
        }
        var sourceIP = profile?.sourceIP
        if let text = options.sourceIP {
            guard let address = PeerAddress(text) else { throw ClientUsageError("--source-ip: '\(text)' is not an IP address") }
            sourceIP = address
        }

        var plan = KnockPlan(
            host: profile?.host ?? options.host,
            family: options.ipv4Only ? .ipv4 : options.ipv6Only ? .ipv6 : profile?.family ?? .any,
            knocks: knocks,
            delayMilliseconds: options.delay ?? profile?.delay ?? defaultDelay,
            spa: nil, wait: wait, profileName: profile?.name)

        guard spa else {
            let stray: [(Bool, String)] = [
                (options.secretFile != nil, "--secret-file"), (options.secret != nil, "--secret"), (options.close, "--close"),
                (options.format != nil, "--format"), (options.sourceIP != nil, "--source-ip"),
            ]
            if let (_, name) = stray.first(where: \.0) { throw ClientUsageError("\(name) applies to SPA only: add --spa") }
            return plan
        }
        if knocks.count != 1 { throw ClientUsageError("SPA sends one packet: give exactly one port") }
        if useSPA2 {
            plan.spa2 = try spa2Plan(options, profile: profile)
            return plan
        }

        let secret: SecretChoice
        let profileFile = options.close ? profile?.closeSecretFile : profile?.openSecretFile
        if let text = options.secret {
            guard !text.isEmpty else { throw ClientUsageError("--secret is empty") }
            secret = .commandLine(Secret(text))
        } else if let file = options.secretFile {
            secret = .file(file)
        } else if let file = profileFile {
            secret = .file(file)
        } else if let text = environment["PKNOCK_SECRET"], !text.isEmpty {
            secret = .environment(Secret(text))
        } else if stdinIsTerminal {
            secret = .prompt
        } else {
            throw ClientUsageError(
                "SPA needs a secret: --secret-file FILE, the PKNOCK_SECRET environment variable,"
                    + " a profile's \(options.close ? "close" : "open")_secret_file, or a terminal to ask on")
        }
        plan.spa = SPAPlan(format: options.format ?? profile?.format ?? .sha256, close: options.close, secret: secret, sourceIP: sourceIP)
        return plan
    }
}

extension KnockPlan {
    /// The plan of an fwknop packet (`--fwknop`): one UDP datagram to the port given (default
    /// 62201), keys from --key-file (fwknop --key-gen's KEY_BASE64/HMAC_KEY_BASE64 lines).
    static func fwknopPlan(
        _ options: KnockOptions, profile: ClientProfile?, environment: [String: String]
    ) throws(ClientUsageError) -> KnockPlan {
        let stray: [(Bool, String)] = [
            (options.secretFile != nil, "--secret-file"), (options.secret != nil, "--secret"), (options.close, "--close"),
            (options.format != nil, "--format"), (options.sourceIP != nil, "--source-ip"), (options.clientID != nil, "--client-id"),
            (options.keyType != nil, "--key-type"), (options.rule != nil, "--rule"),
        ]
        if let (_, name) = stray.first(where: \.0) { throw ClientUsageError("\(name) does not apply to --fwknop") }
        let specs = try portSpecs(options, profile: profile)
        if specs.count > 1 { throw ClientUsageError("an fwknop packet goes to one port") }
        if specs.first?.transport == .tcp { throw ClientUsageError("fwknop packets are UDP only") }
        let port = specs.first?.resolved(defaultTransport: .udp) ?? ServicePort(Fwknop.defaultPort, .udp)
        guard let keyFile = options.keyFile ?? profile?.keyFile, !keyFile.isEmpty else {
            throw ClientUsageError("--fwknop needs --key-file FILE (KEY_BASE64 and HMAC_KEY_BASE64 lines, as fwknop --key-gen prints)")
        }
        guard let accessText = options.access ?? profile?.access else { throw ClientUsageError("--fwknop needs --access PROTO/PORT, e.g. tcp/22") }
        var access: [ServicePort] = []
        for item in accessText.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = item.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count == 2, let transport = TransportProtocol(name: pieces[0]), let number = Port(pieces[1]) else {
                throw ClientUsageError("--access: '\(item)' is not PROTO/PORT (tcp/22, udp/53)")
            }
            access.append(ServicePort(number, transport))
        }
        var address: PeerAddress?
        if let text = options.address ?? profile?.address {
            guard let parsed = PeerAddress(text), parsed.isIPv4 else {
                throw ClientUsageError("--address: '\(text)' is not an IPv4 address (fwknop access requests carry IPv4; 0.0.0.0: the source)")
            }
            address = parsed
        }
        let user = options.user ?? profile?.user ?? environment["USER"] ?? "pknock"
        guard (1...64).contains(user.utf8.count), !user.contains(":") else { throw ClientUsageError("--user: 1 to 64 characters, no ':'") }
        if let timeout = options.fwTimeout, !(1...86_400).contains(timeout) {
            throw ClientUsageError("--fw-timeout must be 1 to 86400 seconds")
        }
        var wait: WaitSpec? = profile?.wait
        if let text = options.wait {
            switch WaitSpec.parse(text) {
            case .success(let spec): wait = spec
            case .failure(let problem): throw problem
            }
        }
        var plan = KnockPlan(
            host: profile?.host ?? options.host,
            family: options.ipv4Only ? .ipv4 : options.ipv6Only ? .ipv6 : profile?.family ?? .any,
            knocks: [port], delayMilliseconds: 0, spa: nil, wait: wait, profileName: profile?.name)
        plan.fwknop = FwknopPlan(keyFile: keyFile, access: access, address: address, user: user, timeout: options.fwTimeout)
        return plan
    }

    /// The SPA v2 settings of `options` (which has `--spa2`); v1-only options are refused.
    ///
    /// The profile's v2 keys fill in what the command line leaves out.
    static func spa2Plan(_ options: KnockOptions, profile: ClientProfile? = nil) throws(ClientUsageError) -> SPAv2Plan {
        let stray: [(Bool, String)] = [
            (options.secretFile != nil, "--secret-file"), (options.secret != nil, "--secret"), (options.close, "--close"),
            (options.format != nil, "--format"), (options.sourceIP != nil, "--source-ip"),
        ]
        if let (_, name) = stray.first(where: \.0) {
            throw ClientUsageError("\(name) applies to SPA v1 (--spa) only; with --spa2 use --key-file and --address")
        }
        guard let clientID = options.clientID ?? profile?.clientID else { throw ClientUsageError("--spa2 needs --client-id ID") }
        guard SPAv2.Message.isValidClientID(clientID) else {
            throw ClientUsageError(
                "--client-id: '\(clientID)' must be 1 to \(SPAv2.maximumClientIDLength) letters, digits, '.', '_' or '-'")
        }
        guard let keyFile = options.keyFile ?? profile?.keyFile, !keyFile.isEmpty else {
            throw ClientUsageError("--spa2 needs --key-file FILE")
        }
        guard let ruleText = options.rule ?? profile?.rule else { throw ClientUsageError("--spa2 needs --rule RULE (the server's rule name)") }
        guard let rule = RuleName(rawValue: ruleText) else {
            throw ClientUsageError("--rule: '\(ruleText)' is not a rule name (1 to \(RuleName.maximumLength) letters, digits, '_', '-')")
        }
        var address: PeerAddress?
        if let text = options.address ?? profile?.address {
            guard let parsed = PeerAddress(text) else { throw ClientUsageError("--address: '\(text)' is not an IP address") }
            address = parsed
        }
        return SPAv2Plan(
            clientID: clientID, keyFile: keyFile, keyType: options.keyType ?? profile?.keyType ?? .ed25519, rule: rule, address: address)
    }
}

/// The lines `pknock knock` prints for `--dry-run` and `--verbose`.
enum KnockReport {
    /// One knock of a sequence: `TCP SYN to 192.0.2.1 port 2002`.
    static func knock(_ knock: ServicePort, to server: PeerAddress) -> String {
        switch knock.transport {
        case .tcp: "TCP SYN to \(server) port \(knock.port)"
        case .udp: "UDP datagram (1 byte) to \(server) port \(knock.port)"
        }
    }

    /// The SPA packet: what, where, and what the MAC covers; then the payload on its own line.
    static func spa(_ spa: SPAPlan, payload: [UInt8], source: PeerAddress, epochMinute: Int64, to server: PeerAddress, port: ServicePort)
        -> [String]
    {
        let digits = payload.last == UInt8(ascii: "\n") ? payload.dropLast() : payload[...]
        return [
            "SPA \(spa.close ? "close" : "open") knock (\(spa.format)) to \(server) port \(port): \(payload.count) bytes,"
                + " MAC over source \(source) and epoch minute \(epochMinute)",
            "payload: \(String(decoding: digits, as: UTF8.self))\(digits.count < payload.count ? " + newline" : "")",
        ]
    }
}

extension KnockPlan {
    /// The knock ports the command line names, or the profile's when it names none.
    fileprivate static func portSpecs(_ options: KnockOptions, profile: ClientProfile?) throws(ClientUsageError) -> [KnockPortSpec] {
        var specs: [KnockPortSpec] = []
        for text in options.ports {
            switch KnockPortSpec.parse(text) {
            case .success(let spec): specs.append(spec)
            case .failure(let problem): throw problem
            }
        }
        if let profile, specs.isEmpty { specs = profile.knock }
        return specs
    }
}
