import Crypto
import Foundation
import KnockCore

/// Turns a parsed `pknock.toml` into daemon settings and rules, collecting every diagnostic.
struct TOMLConfigReader<Secrets: SecretSource> {
    static var rootKeys: [String] { ["daemon", "rule", "client", "fleet"] }
    static var fleetKeys: [String] {
        [
            "endpoints", "node", "prefix", "commit_timeout", "on_unreachable", "ca_file", "cert_file", "key_file", "username",
            "password_file",
        ]
    }
    static var daemonKeys: [String] {
        [
            "table", "nflog_group", "state_directory", "control_socket", "max_tracked_peers", "hook_timeout", "metrics_listen",
            "spa2_clock_window", "fwknop_clock_window", "closed_port_response", "first_knock_capacity", "nflog_batching",
        ]
    }
    static var clientKeys: [String] {
        ["id", "rules", "ed25519_public_key", "ed25519_public_key_file", "hmac_key_file", "fwknop_key_file", "may_name_address"]
    }
    static var ruleKeys: [String] {
        [
            "name", "knock", "protocol", "time", "strict", "autoclose", "protect", "max_tracked_peers",
            "max_allowed_peers", "spa", "open_secret_file", "close_secret_file", "open_secret", "close_secret",
            "clock_skew", "on_open", "on_close", "allow_named_address", "require_source_address", "max_wrong_knocks",
        ]
    }

    let file: String
    let secrets: Secrets
    private(set) var diagnostics: [ConfigDiagnostic] = []
    /// The `on_open`/`on_close` commands of the rules read so far.
    private(set) var hooks: [RuleName: RuleHooks] = [:]

    init(file: String, secrets: Secrets) {
        self.file = file
        self.secrets = secrets
    }

    /// Reads the whole document; the result is only usable when `diagnostics` holds no error.
    mutating func read(_ root: TOMLTable) -> Configuration {
        var daemon = DaemonSettings()
        if let entry = root["daemon"] {
            if case .table(let table) = entry.value.kind {
                daemon = readDaemon(table)
            } else {
                error(entry.line, field: "daemon", "expected a [daemon] table, found \(entry.value.typeName)")
            }
        }
        var rules: [Rule] = []
        var sites: [RuleSite] = []
        if let entry = root["rule"] {
            switch entry.value.kind {
            case .tableArray(let tables):
                for (index, table) in tables.enumerated() {
                    if let (rule, site) = readRule(table, number: index + 1, daemon: daemon) {
                        rules.append(rule)
                        sites.append(site)
                    }
                }
            case .table:
                error(entry.line, field: "rule", "write each rule as [[rule]] (an array of tables), not [rule]")
            default:
                error(entry.line, field: "rule", "expected [[rule]] tables, found \(entry.value.typeName)")
            }
        } else {
            diagnostics.append(ConfigDiagnostic(.warning, file: file, line: nil, "no [[rule]]: the daemon will protect nothing"))
        }
        for entry in root.entries where !Self.rootKeys.contains(entry.key) {
            unknown(entry, known: Self.rootKeys, in: nil)
        }
        diagnostics += RuleProblems.diagnostics(rules: rules, sites: sites, file: file)
        var configuration = Configuration(daemon: daemon, rules: rules)
        configuration.hooks = hooks
        if let entry = root["client"] {
            if case .tableArray(let tables) = entry.value.kind {
                var seen: Set<String> = []
                for table in tables {
                    let read: (id: String, line: Int)?
                    if table["fwknop_key_file"] != nil {
                        let client = readFwknopClient(table, rules: rules)
                        if let client { configuration.fwknopClients.append(client) }
                        read = client.map { ($0.id, table.line) }
                    } else {
                        let client = readClient(table, rules: rules)
                        if let client { configuration.clients.append(client) }
                        read = client.map { ($0.id, table.line) }
                    }
                    if let read, !seen.insert(read.id).inserted {
                        error(read.line, field: "client", "duplicate client id \"\(read.id)\"")
                    }
                }
            } else {
                error(entry.line, field: "client", "write each client as [[client]] (an array of tables)")
            }
        }
        if let entry = root["fleet"] {
            if case .table(let table) = entry.value.kind {
                configuration.fleet = readFleet(table)
            } else {
                error(entry.line, field: "fleet", "expected a [fleet] table, found \(entry.value.typeName)")
            }
        }
        return configuration
    }

    // MARK: [fleet]

    private mutating func readFleet(_ table: TOMLTable) -> FleetSettings? {
        var endpoints: [String]?
        var settings = FleetSettings(endpoints: [], node: Self.hostName())
        var failed = false
        for entry in table.entries {
            let field = "fleet.\(entry.key)"
            switch entry.key {
            case "endpoints":
                guard case .array(let values) = entry.value.kind, !values.isEmpty else {
                    error(entry.line, field: field, "expected a non-empty array of \"http://HOST:PORT\" or \"https://HOST:PORT\" strings")
                    failed = true
                    continue
                }
                var urls: [String] = []
                for value in values {
                    guard case .string(let text) = value.kind, Self.isEndpoint(text) else {
                        error(value.line, field: field, "expected \"http://HOST:PORT\" or \"https://HOST:PORT\" (no path)")
                        failed = true
                        continue
                    }
                    urls.append(text.hasSuffix("/") ? String(text.dropLast()) : text)
                }
                endpoints = urls
            case "node":
                guard let name = string(entry, field: field) else {
                    failed = true
                    continue
                }
                if let problem = FleetSettings.nodeProblem(name) {
                    error(entry.line, field: field, problem)
                    failed = true
                } else {
                    settings.node = name
                }
            case "prefix":
                guard let prefix = string(entry, field: field) else {
                    failed = true
                    continue
                }
                if !prefix.hasPrefix("/") || prefix.hasSuffix("/") || prefix.count < 2 || prefix.contains("//") {
                    error(entry.line, field: field, "must start with '/' and not end with one, e.g. \"/pknock\"")
                    failed = true
                } else {
                    settings.prefix = prefix
                }
            case "commit_timeout":
                switch Self.shortDuration(entry.value.kind) {
                case .success(let timeout) where timeout >= .milliseconds(10) && timeout <= .seconds(30):
                    settings.commitTimeout = timeout
                case .success:
                    error(entry.line, field: field, "must be 10 ms to 30 seconds")
                    failed = true
                case .failure(let message):
                    error(entry.line, field: field, Self.refusal(message, of: entry.value))
                    failed = true
                }
            case "on_unreachable":
                guard let text = string(entry, field: field) else {
                    failed = true
                    continue
                }
                if let choice = FleetSettings.OnUnreachable(rawValue: text) {
                    settings.onUnreachable = choice
                } else {
                    error(entry.line, field: field, "expected \"refuse\" or \"local\", found \"\(text)\"")
                    failed = true
                }
            case "ca_file", "cert_file", "key_file":
                guard let path = string(entry, field: field) else {
                    failed = true
                    continue
                }
                let resolved = resolve(path)
                switch entry.key {
                case "ca_file": settings.caFile = resolved
                case "cert_file": settings.certFile = resolved
                default:
                    // A private key is a secret: the same checks as every other secret file.
                    do {
                        _ = try secrets.contents(ofSecretFile: resolved)
                        settings.keyFile = resolved
                    } catch {
                        self.error(entry.line, field: field, error.message)
                        failed = true
                    }
                }
            case "username":
                guard let name = string(entry, field: field), !name.isEmpty else {
                    if case .string = entry.value.kind { error(entry.line, field: field, "must not be empty") }
                    failed = true
                    continue
                }
                settings.username = name
            case "password_file":
                guard let path = string(entry, field: field) else {
                    failed = true
                    continue
                }
                do {
                    let contents = try secrets.contents(ofSecretFile: resolve(path))
                    settings.password = String(Syntax.keyText(fileContents: contents))
                } catch {
                    self.error(entry.line, field: field, error.message)
                    failed = true
                }
            default:
                unknown(entry, known: Self.fleetKeys, in: "fleet")
                failed = true
            }
        }
        guard let endpoints else {
            error(table.line, field: "fleet.endpoints", "a [fleet] needs endpoints, the etcd client URLs")
            return nil
        }
        settings.endpoints = endpoints
        if (settings.certFile == nil) != (settings.keyFile == nil) && !failed {
            error(table.line, field: table["cert_file"] == nil ? "fleet.cert_file" : "fleet.key_file", "give cert_file and key_file together")
            failed = true
        }
        if (settings.username == nil) != (settings.password == nil) && !failed {
            error(table.line, field: settings.username == nil ? "fleet.username" : "fleet.password_file", "give username and password_file together")
            failed = true
        }
        let usesTLS = endpoints.contains { $0.hasPrefix("https://") }
        if !usesTLS && (settings.caFile != nil || settings.certFile != nil) {
            diagnostics.append(
                ConfigDiagnostic(.warning, file: file, line: table.line, field: "fleet", "ca_file/cert_file are used only with https:// endpoints"))
        }
        if settings.password != nil && !usesTLS {
            diagnostics.append(
                ConfigDiagnostic(
                    .warning, file: file, line: table.line, field: "fleet.password_file",
                    "the etcd password travels in clear text over http:// endpoints"))
        }
        return failed ? nil : settings
    }

    /// A duration as elsewhere, or whole milliseconds ("200ms"), for bounds below a second.
    static func shortDuration(_ value: TOMLValue.Kind) -> Result<Duration, ValueSyntax.Message> {
        if case .string(let text) = value, text.hasSuffix("ms") {
            let digits = text.dropLast(2)
            guard !digits.isEmpty, digits.utf8.count <= 9, digits.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
                let count = Int64(digits)
            else {
                return .failure(ValueSyntax.Message("invalid duration \"\(text)\": use whole milliseconds such as \"200ms\", or s, m, h"))
            }
            return .success(.milliseconds(count))
        }
        return ValueSyntax.duration(value, bareUnit: .seconds)
    }

    /// Whether `text` is "http(s)://HOST:PORT" (an optional trailing slash, no path).
    static func isEndpoint(_ text: String) -> Bool {
        let rest: Substring
        if text.hasPrefix("http://") {
            rest = text.dropFirst(7)
        } else if text.hasPrefix("https://") {
            rest = text.dropFirst(8)
        } else {
            return false
        }
        let hostPort = rest.hasSuffix("/") ? rest.dropLast() : rest
        guard !hostPort.contains("/"), let colon = hostPort.lastIndex(of: ":"), let port = UInt16(hostPort[hostPort.index(after: colon)...]),
            port > 0
        else { return false }
        return colon != hostPort.startIndex && !hostPort.contains(where: { $0 == " " || $0 == "@" })
    }

    /// The host name, as the default node name.
    static func hostName() -> String {
        let name = ProcessInfo.processInfo.hostName
        let short = name.split(separator: ".").first.map(String.init) ?? name
        return FleetSettings.nodeProblem(short) == nil ? short : "pknockd"
    }

    // MARK: [daemon]

    private mutating func readDaemon(_ table: TOMLTable) -> DaemonSettings {
        var daemon = DaemonSettings()
        for entry in table.entries {
            let field = "daemon.\(entry.key)"
            switch entry.key {
            case "table":
                guard let name = string(entry, field: field) else { continue }
                if let problem = Syntax.tableNameProblem(name) {
                    error(entry.line, field: field, problem)
                } else {
                    daemon.table = name
                }
            case "nflog_group":
                guard let group = integer(entry, field: field) else { continue }
                if let value = UInt16(exactly: group) {
                    daemon.nflogGroup = value
                } else {
                    error(entry.line, field: field, "must be 0 to 65535, found \(group)")
                }
            case "state_directory", "control_socket":
                guard let path = string(entry, field: field) else { continue }
                guard path.hasPrefix("/") else {
                    error(entry.line, field: field, "must be an absolute path, found \"\(path)\"")
                    continue
                }
                if entry.key == "state_directory" { daemon.stateDirectory = path } else { daemon.controlSocket = path }
            case "max_tracked_peers":
                guard let count = integer(entry, field: field) else { continue }
                if count < 1 || count > Int64(Int32.max) {
                    error(entry.line, field: field, "must be 1 to \(Int32.max), found \(count)")
                } else {
                    daemon.maxTrackedPeers = Int(count)
                }
            case "first_knock_capacity":
                guard let count = integer(entry, field: field) else { continue }
                let range = DaemonSettings.firstKnockCapacityRange
                if count < Int64(range.lowerBound) || count > Int64(range.upperBound) {
                    error(entry.line, field: field, "must be \(range.lowerBound) to \(range.upperBound), found \(count)")
                } else {
                    daemon.firstKnockCapacity = Int(count)
                }
            case "hook_timeout":
                switch ValueSyntax.duration(entry.value.kind, bareUnit: .seconds) {
                case .success(let timeout) where timeout > .zero && timeout <= .seconds(3600):
                    daemon.hookTimeout = timeout
                case .success:
                    error(entry.line, field: field, "must be more than 0 and at most 1 hour")
                case .failure(let message):
                    error(entry.line, field: field, Self.refusal(message, of: entry.value))
                }
            case "spa2_clock_window":
                switch ValueSyntax.duration(entry.value.kind, bareUnit: .seconds) {
                case .success(let window) where window >= .seconds(5) && window <= .seconds(3600):
                    daemon.spa2ClockWindow = window
                case .success:
                    error(entry.line, field: field, "must be 5 seconds to 1 hour")
                case .failure(let message):
                    error(entry.line, field: field, Self.refusal(message, of: entry.value))
                }
            case "fwknop_clock_window":
                switch ValueSyntax.duration(entry.value.kind, bareUnit: .seconds) {
                case .success(let window) where window >= .seconds(5) && window <= .seconds(3600):
                    daemon.fwknopClockWindow = window
                case .success:
                    error(entry.line, field: field, "must be 5 seconds to 1 hour")
                case .failure(let message):
                    error(entry.line, field: field, Self.refusal(message, of: entry.value))
                }
            case "closed_port_response":
                guard let text = string(entry, field: field) else { continue }
                if let response = ClosedPortResponse(rawValue: text) {
                    daemon.closedPortResponse = response
                } else {
                    error(entry.line, field: field, "expected \"reset\" or \"drop\", found \"\(text)\"")
                }
            case "nflog_batching":
                if let on = boolean(entry, field: field) { daemon.nflogBatching = on }
            case "metrics_listen":
                guard let text = string(entry, field: field) else { continue }
                if let address = MetricsListenAddress(parsing: text) {
                    daemon.metricsListen = address
                } else {
                    error(entry.line, field: field, "expected \"HOST:PORT\" with an IP address, e.g. \"127.0.0.1:9472\" or \"[::1]:9472\"")
                }
            default:
                unknown(entry, known: Self.daemonKeys, in: "daemon")
            }
        }
        return daemon
    }

    // MARK: [[rule]]

    private mutating func readRule(_ table: TOMLTable, number: Int, daemon: DaemonSettings) -> (Rule, RuleSite)? {
        var site = RuleSite(line: table.line)

        // The name first: every other message carries it.
        var label = "#\(number)"
        var name: RuleName?
        if let entry = table["name"] {
            site.fieldLines["name"] = entry.line
            if let text = string(entry, field: "name", rule: label) {
                label = text
                if let problem = RuleName.problem(with: text) {
                    error(entry.line, rule: label, field: "name", problem)
                } else {
                    name = RuleName(rawValue: text)
                }
            }
        } else {
            error(table.line, rule: label, field: "name", "a rule name is required")
        }

        var transport = TransportProtocol.tcp
        if let entry = table["protocol"] {
            if let text = string(entry, field: "protocol", rule: label) {
                if let named = TransportProtocol(name: text) {
                    transport = named
                } else {
                    error(entry.line, rule: label, field: "protocol", "expected \"tcp\" or \"udp\", found \"\(text)\"")
                }
            }
        }

        var knocks: [ServicePort] = []
        if let entry = table["knock"] {
            site.fieldLines["knock"] = entry.line
            if let ports = servicePorts(entry, field: "knock", rule: label, defaultProtocol: transport) {
                knocks = ports
            } else {
                site.erroredFields.insert("knock")
            }
        }
        var protected: [ServicePort] = []
        if let entry = table["protect"] {
            site.fieldLines["protect"] = entry.line
            if let ports = servicePorts(entry, field: "protect", rule: label, defaultProtocol: transport) {
                protected = ports
            } else {
                site.erroredFields.insert("protect")
            }
        }

        var gap: Duration?
        if let entry = table["time"] {
            site.fieldLines["time"] = entry.line
            gap = duration(entry, field: "time", rule: label, bareUnit: .seconds)
            if gap == nil { site.erroredFields.insert("time") }
        }
        var autoclose: Duration?
        if let entry = table["autoclose"] {
            site.fieldLines["autoclose"] = entry.line
            autoclose = duration(entry, field: "autoclose", rule: label, bareUnit: .minutes)
            if autoclose == .zero { autoclose = nil }
        }
        var strict = false
        if let entry = table["strict"], let value = boolean(entry, field: "strict", rule: label) { strict = value }

        var maxTracked = daemon.maxTrackedPeers
        if let entry = table["max_tracked_peers"] {
            site.fieldLines["max_tracked_peers"] = entry.line
            if let count = peerCount(entry, field: "max_tracked_peers", rule: label) { maxTracked = count }
        }
        var maxAllowed = Rule.defaultMaxAllowedPeers
        if let entry = table["max_allowed_peers"] {
            site.fieldLines["max_allowed_peers"] = entry.line
            if let count = peerCount(entry, field: "max_allowed_peers", rule: label) { maxAllowed = count }
        }

        // The budget is for non-strict sequence rules: a strict rule drops an attempt at its first wrong
        // knock, and an SPA rule has no sequence.
        let sequenceRule = table["open_secret_file"] == nil && table["open_secret"] == nil && table["spa"] == nil
        var maxWrong = !strict && sequenceRule ? Rule.defaultMaxWrongKnocks : 0
        if let entry = table["max_wrong_knocks"] {
            site.fieldLines["max_wrong_knocks"] = entry.line
            if let count = integer(entry, field: "max_wrong_knocks", rule: label) {
                if (0...Int64(Rule.maximumWrongKnocks)).contains(count) {
                    maxWrong = Int(count)
                } else {
                    error(
                        entry.line, rule: label, field: "max_wrong_knocks",
                        "must be 0 (no limit) to \(Rule.maximumWrongKnocks), found \(count)")
                }
            }
        }

        var spa: SPASettings?
        var spa2: SPAv2RuleSettings?
        var fwknop: FwknopRuleSettings?
        if let entry = table["spa"], case .string("fwknop") = entry.value.kind {
            site.fieldLines["spa"] = entry.line
            var settings = FwknopRuleSettings()
            if let named = table["allow_named_address"], let allowed = boolean(named, field: "allow_named_address", rule: label) {
                settings.allowNamedAddress = allowed
            }
            if let required = table["require_source_address"],
                let flag = boolean(required, field: "require_source_address", rule: label)
            {
                settings.requireSourceAddress = flag
            }
            fwknop = settings
            // fwknop clients send to 62201/udp unless told otherwise.
            if table["knock"] == nil { knocks = [ServicePort(Fwknop.defaultPort, .udp)] }
            for key in ["open_secret_file", "close_secret_file", "open_secret", "close_secret", "clock_skew"] {
                if let other = table[key] {
                    error(other.line, rule: label, field: key, "fwknop rules take their keys from [[client]] entries (fwknop_key_file), not \(key)")
                }
            }
        } else if let entry = table["spa"], case .string("v2") = entry.value.kind {
            site.fieldLines["spa"] = entry.line
            spa2 = SPAv2RuleSettings()
            if let named = table["allow_named_address"], let allowed = boolean(named, field: "allow_named_address", rule: label) {
                spa2?.allowNamedAddress = allowed
            }
            for key in ["open_secret_file", "close_secret_file", "open_secret", "close_secret", "clock_skew"] {
                if let other = table[key] {
                    error(other.line, rule: label, field: key, "SPA v2 rules take their keys from [[client]] entries, not \(key)")
                }
            }
        } else {
            spa = readSPA(table, rule: label, site: &site)
            if let entry = table["allow_named_address"] {
                error(entry.line, rule: label, field: "allow_named_address", "applies only to SPA v2 and fwknop rules (spa = \"v2\" or \"fwknop\")")
            }
        }
        if fwknop == nil, let entry = table["require_source_address"] {
            error(entry.line, rule: label, field: "require_source_address", "applies only to fwknop rules (spa = \"fwknop\")")
        }

        var ruleHooks = RuleHooks()
        for key in ["on_open", "on_close"] {
            guard let entry = table[key], let command = string(entry, field: key, rule: label) else { continue }
            if command.allSatisfy({ $0 == " " || $0 == "\t" }) {
                error(entry.line, rule: label, field: key, "the command is empty")
            } else if key == "on_open" {
                ruleHooks.onOpen = command
            } else {
                ruleHooks.onClose = command
            }
        }

        for entry in table.entries where !Self.ruleKeys.contains(entry.key) {
            unknown(entry, known: Self.ruleKeys, in: label)
        }

        // A rule whose fields did not all parse still gets KnockCore's checks of the others.
        guard let name else { return nil }
        if ruleHooks != RuleHooks() { hooks[name] = ruleHooks }
        let rule = Rule(
            name: name, knockSequence: knocks, maxKnockGap: gap, strict: strict, autoclose: autoclose, spa: spa,
            spa2: spa2, fwknop: fwknop, protectedPorts: protected, maxTrackedPeers: maxTracked, maxAllowedPeers: maxAllowed,
            maxWrongKnocks: maxWrong)
        return (rule, site)
    }

    // MARK: [[client]]

    /// One SPA v2 client: `id`, its key (an Ed25519 public key inline or in a file, or an HMAC key
    /// file readable only by its owner), the v2 rules it may open, and `may_name_address`.
    private mutating func readClient(_ table: TOMLTable, rules: [Rule]) -> SPAv2Client? {
        let context = "client"
        for entry in table.entries where !Self.clientKeys.contains(entry.key) {
            unknown(entry, known: Self.clientKeys, in: context)
        }
        guard let idEntry = table["id"], let id = string(idEntry, field: "id") else {
            error(table.line, field: "client", "a [[client]] needs an id")
            return nil
        }
        guard SPAv2.Message.isValidClientID(id) else {
            error(idEntry.line, field: "id", "a client id is 1 to 32 letters, digits, '.', '_' or '-'")
            return nil
        }
        let allowedRules = allowedRules(in: table, client: id, rules: rules, kind: "SPA v2", spa: "v2") { $0.spa2 != nil }
        let keyEntries = ["ed25519_public_key", "ed25519_public_key_file", "hmac_key_file"].compactMap { table[$0] }
        guard keyEntries.count == 1, let keyEntry = keyEntries.first else {
            error(table.line, field: "client", "client \(id): give exactly one of ed25519_public_key, ed25519_public_key_file, hmac_key_file")
            return nil
        }
        guard let text = string(keyEntry, field: keyEntry.key) else { return nil }
        var encoded = text
        switch keyEntry.key {
        case "ed25519_public_key":
            break
        case "ed25519_public_key_file":
            // A public key is no secret, but whoever could replace it could sign for the client.
            do {
                encoded = String(decoding: try secrets.contents(ofPublicKeyFile: resolve(text)), as: UTF8.self)
            } catch {
                self.error(keyEntry.line, field: keyEntry.key, "client \(id): \(error)")
                return nil
            }
        default:
            do {
                encoded = String(decoding: try secrets.contents(ofSecretFile: resolve(text)), as: UTF8.self)
            } catch {
                self.error(keyEntry.line, field: keyEntry.key, "client \(id): \(error)")
                return nil
            }
        }
        let trimmed = String(Syntax.keyText(fileContents: Array(encoded.utf8)))
        guard let raw = Data(base64Encoded: trimmed), raw.count == 32 else {
            error(keyEntry.line, field: keyEntry.key, "client \(id): expected 32 bytes in base64 (as pknock keygen writes)")
            return nil
        }
        let key: SPAv2.VerificationKey
        if keyEntry.key == "hmac_key_file" {
            key = .hmac(SymmetricKey(data: raw))
        } else {
            guard let publicKey = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else {
                error(keyEntry.line, field: keyEntry.key, "client \(id): not an Ed25519 public key")
                return nil
            }
            key = .ed25519(publicKey)
        }
        var mayNameAddress = false
        if let entry = table["may_name_address"], let flag = boolean(entry, field: "may_name_address") { mayNameAddress = flag }
        return SPAv2Client(id: id, key: key, rules: allowedRules, mayNameAddress: mayNameAddress)
    }

    /// One fwknop client: `id` (a name for logs), `fwknop_key_file` (KEY_BASE64 and HMAC_KEY_BASE64
    /// lines as `fwknop --key-gen` prints them, readable only by its owner) and the fwknop rules it may open.
    private mutating func readFwknopClient(_ table: TOMLTable, rules: [Rule]) -> FwknopClient? {
        for entry in table.entries where !Self.clientKeys.contains(entry.key) {
            unknown(entry, known: Self.clientKeys, in: "client")
        }
        guard let idEntry = table["id"], let id = string(idEntry, field: "id") else {
            error(table.line, field: "client", "a [[client]] needs an id")
            return nil
        }
        guard SPAv2.Message.isValidClientID(id) else {
            error(idEntry.line, field: "id", "a client id is 1 to 32 letters, digits, '.', '_' or '-'")
            return nil
        }
        for key in ["ed25519_public_key", "ed25519_public_key_file", "hmac_key_file", "may_name_address"] {
            if let other = table[key] {
                error(other.line, field: key, "client \(id): an fwknop client (fwknop_key_file) takes no \(key)")
            }
        }
        let allowedRules = allowedRules(in: table, client: id, rules: rules, kind: "fwknop", spa: "fwknop") { $0.fwknop != nil }
        guard let keyEntry = table["fwknop_key_file"], let path = string(keyEntry, field: "fwknop_key_file") else { return nil }
        let keys: Fwknop.Keys
        do {
            let contents = try secrets.contents(ofSecretFile: resolve(path))
            keys = try Fwknop.Keys(parsing: String(decoding: contents, as: UTF8.self))
        } catch let error as SecretSourceError {
            self.error(keyEntry.line, field: "fwknop_key_file", "client \(id): \(error)")
            return nil
        } catch {
            self.error(keyEntry.line, field: "fwknop_key_file", "client \(id): \(path): \(error)")
            return nil
        }
        return FwknopClient(id: id, keys: keys, rules: allowedRules)
    }

    /// The rules a `[[client]]` table's `rules` list names, each checked to be of the client's kind
    /// (`isOfKind`); errors for a missing or empty list, a non-name, or a rule of another kind.
    private mutating func allowedRules(
        in table: TOMLTable, client id: String, rules: [Rule], kind: String, spa: String, isOfKind: (Rule) -> Bool
    ) -> Set<RuleName> {
        var allowed: Set<RuleName> = []
        guard let entry = table["rules"], case .array(let items) = entry.value.kind, !items.isEmpty else {
            error(table["rules"]?.line ?? table.line, field: "rules", "client \(id): rules must list the \(kind) rules it may open")
            return allowed
        }
        for item in items {
            guard case .string(let text) = item.kind, let name = RuleName(rawValue: text) else {
                error(entry.line, field: "rules", "client \(id): expected rule names")
                continue
            }
            guard rules.contains(where: { $0.name == name && isOfKind($0) }) else {
                error(entry.line, field: "rules", "client \(id): \(text) is not an \(kind) rule (spa = \"\(spa)\")")
                continue
            }
            allowed.insert(name)
        }
        return allowed
    }

    /// The SPA keys of a rule: `spa`, the secrets (from files or inline) and `clock_skew`.
    private mutating func readSPA(_ table: TOMLTable, rule label: String, site: inout RuleSite) -> SPASettings? {
        var format: SPAFormat?
        if let entry = table["spa"], let text = string(entry, field: "spa", rule: label) {
            if let named = SPAFormat(rawValue: text) {
                format = named
            } else {
                error(entry.line, rule: label, field: "spa", "expected \"sha256\" or \"md5\", found \"\(text)\"")
            }
        }
        let open = secret(in: table, base: "open_secret", rule: label, site: &site)
        let close = secret(in: table, base: "close_secret", rule: label, site: &site)
        var skew = 1
        if let entry = table["clock_skew"] {
            site.fieldLines["clock_skew"] = entry.line
            if let minutes = integer(entry, field: "clock_skew", rule: label) {
                // The range itself is KnockCore's check; clamp only so the value fits an Int.
                skew = Int(clamping: minutes)
            }
        }

        switch open {
        case .absent:
            if case .present = close {
                error(site.line(for: "close_secret"), rule: label, field: site.name(for: "close_secret"), "needs open_secret_file as well")
            }
            if let entry = table["spa"] {
                error(entry.line, rule: label, field: "spa", "an SPA rule needs open_secret_file")
            }
            if let entry = table["clock_skew"] {
                error(entry.line, rule: label, field: "clock_skew", "applies only to SPA rules (with open_secret_file)")
            }
            return nil
        case .failed:
            return nil
        case .present(let openSecret):
            var closeSecret: Secret?
            switch close {
            case .present(let secret): closeSecret = secret
            case .failed: return nil
            case .absent:
                // "open_secret and close_secret go together" belongs on the open secret's line.
                site.fieldLines["close_secret"] = site.fieldLines["open_secret"]
                site.fieldNames["close_secret"] = site.fieldNames["open_secret"]
            }
            return SPASettings(format: format ?? .sha256, openSecret: openSecret, closeSecret: closeSecret, clockSkewMinutes: skew)
        }
    }

    private enum SecretLookup {
        case absent
        case failed
        case present(Secret)
    }

    /// `<base>_file` or `<base>` (inline, with a warning), but not both.
    private mutating func secret(in table: TOMLTable, base: String, rule label: String, site: inout RuleSite) -> SecretLookup {
        let fileKey = "\(base)_file"
        switch (table[fileKey], table[base]) {
        case (nil, nil):
            return .absent
        case (let fileEntry?, _?):
            error(fileEntry.line, rule: label, field: fileKey, "give \(fileKey) or \(base), not both")
            site.erroredFields.insert(base)
            return .failed
        case (let fileEntry?, nil):
            site.fieldLines[base] = fileEntry.line
            site.fieldNames[base] = fileKey
            guard let path = string(fileEntry, field: fileKey, rule: label) else { return .failed }
            do {
                let contents = try secrets.contents(ofSecretFile: resolve(path))
                return .present(Secret(fileContents: contents))
            } catch {
                self.error(fileEntry.line, rule: label, field: fileKey, error.message)
                return .failed
            }
        case (nil, let inline?):
            site.fieldLines[base] = inline.line
            guard let text = string(inline, field: base, rule: label) else { return .failed }
            diagnostics.append(
                ConfigDiagnostic(
                    .warning, file: file, line: inline.line, rule: label, field: base,
                    "the secret is written in the configuration file; keep it in \(fileKey), readable only by root"))
            return .present(Secret(text))
        }
    }

    /// A path relative to the config file's directory, as written when absolute.
    func resolve(_ path: String) -> String {
        guard !path.hasPrefix("/"), let slash = file.lastIndex(of: "/") else { return path }
        return String(file[...slash]) + path
    }

    // MARK: Typed access

    private mutating func servicePorts(
        _ entry: TOMLEntry, field: String, rule: String, defaultProtocol: TransportProtocol
    ) -> [ServicePort]? {
        let elements: [TOMLValue]
        if case .array(let values) = entry.value.kind { elements = values } else { elements = [entry.value] }
        var ports: [ServicePort] = []
        var failed = false
        for element in elements {
            let parsed: Result<ServicePort, ValueSyntax.Message>
            switch element.kind {
            case .integer(let number): parsed = ValueSyntax.port(number).map { ServicePort($0, defaultProtocol) }
            case .string(let text): parsed = ValueSyntax.servicePort(text, defaultProtocol: defaultProtocol)
            default:
                parsed = .failure(ValueSyntax.Message("expected port numbers or \"port:protocol\" strings, found \(element.typeName)"))
            }
            switch parsed {
            case .success(let port): ports.append(port)
            case .failure(let message):
                error(element.line, rule: rule, field: field, message.text)
                failed = true
            }
        }
        return failed ? nil : ports
    }

    private mutating func duration(_ entry: TOMLEntry, field: String, rule: String, bareUnit: ValueSyntax.BareUnit) -> Duration? {
        switch ValueSyntax.duration(entry.value.kind, bareUnit: bareUnit) {
        case .success(let value): return value
        case .failure(let message):
            error(entry.line, rule: rule, field: field, Self.refusal(message, of: entry.value))
            return nil
        }
    }

    private mutating func peerCount(_ entry: TOMLEntry, field: String, rule: String) -> Int? {
        guard let count = integer(entry, field: field, rule: rule) else { return nil }
        guard (1...Int64(Int32.max)).contains(count) else {
            error(entry.line, rule: rule, field: field, "must be 1 to \(Int32.max), found \(count)")
            return nil
        }
        return Int(count)
    }

    private mutating func string(_ entry: TOMLEntry, field: String, rule: String? = nil) -> String? {
        if case .string(let text) = entry.value.kind { return text }
        mismatch(entry, expected: "a string", field: field, rule: rule)
        return nil
    }

    private mutating func integer(_ entry: TOMLEntry, field: String, rule: String? = nil) -> Int64? {
        if case .integer(let value) = entry.value.kind { return value }
        mismatch(entry, expected: "an integer", field: field, rule: rule)
        return nil
    }

    private mutating func boolean(_ entry: TOMLEntry, field: String, rule: String? = nil) -> Bool? {
        if case .boolean(let value) = entry.value.kind { return value }
        mismatch(entry, expected: "true or false", field: field, rule: rule)
        return nil
    }

    private mutating func mismatch(_ entry: TOMLEntry, expected: String, field: String, rule: String?) {
        // Never echo the value: it may be a secret.
        error(entry.line, rule: rule, field: field, "expected \(expected), \(Self.found(entry.value))")
    }

    /// "found an array", with a hint for the TOML kinds that no setting takes (floats, dates and times).
    private static func found(_ value: TOMLValue) -> String {
        switch value.kind {
        case .float: "found a float; settings take whole numbers"
        case .dateTime: "found \(value.typeName); no setting takes a date or time"
        default: "found \(value.typeName)"
        }
    }

    /// A duration's refusal, naming the value's kind when it is one no setting takes.
    private static func refusal(_ message: ValueSyntax.Message, of value: TOMLValue) -> String {
        switch value.kind {
        case .float, .dateTime: message.text + ", " + found(value)
        default: message.text
        }
    }

    private mutating func unknown(_ entry: TOMLEntry, known: [String], in context: String?) {
        var message: String
        switch entry.value.kind {
        case .table, .tableArray: message = "unknown table \"\(entry.key)\""
        default: message = "unknown key \"\(entry.key)\""
        }
        if let suggestion = ValueSyntax.suggestion(for: entry.key, among: known) { message += "; did you mean \"\(suggestion)\"?" }
        if context == "daemon" || context == "fleet" {
            error(entry.line, field: context, message)
        } else {
            error(entry.line, rule: context, field: nil, message)
        }
    }

    private mutating func error(_ line: Int, rule: String? = nil, field: String?, _ message: String) {
        diagnostics.append(ConfigDiagnostic(file: file, line: line, rule: rule, field: field, message))
    }
}
