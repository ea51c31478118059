import ArgumentParser
import Foundation
import KnockConfig
import KnockCore

/// `pknock check`: validate a configuration and show the rules as pknockd will understand them.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a configuration file and print the rules it defines.",
        discussion: """
            FILE is a pknock.toml file or an xt_pknock iptables rules file (see pknock.toml(5) for how \
            the two are told apart). Secrets are never printed. Warnings go to standard error. \
            Exit status: 0 when the configuration loads, 2 when it does not.
            """
    )

    /// How `check` prints what it understood.
    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case text
        case json
    }

    @Argument(help: "The configuration file.")
    var file: String = ConfigLoader.defaultPath

    @Option(help: "Output format: text, or json for scripts.")
    var format: OutputFormat = .text

    func run() throws {
        let configuration: Configuration
        do {
            configuration = try ConfigLoader.load(path: file)
        } catch {
            for diagnostic in error.diagnostics { printError(diagnostic.description) }
            if format == .json { print(Self.json(CheckReport(errors: error.diagnostics))) }
            throw ExitCode(2)
        }
        for warning in configuration.warnings { printError(warning.description) }
        switch format {
        case .text:
            print(Self.text(configuration), terminator: "")
            print("configuration OK")
        case .json:
            print(Self.json(CheckReport(configuration)))
        }
    }

    private func printError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    // MARK: Rendering

    /// The daemon settings and one block per rule, as `pknock check` prints them.
    ///
    /// Never shows secrets.
    static func text(_ configuration: Configuration) -> String {
        let daemon = configuration.daemon
        var out = "daemon\n"
        func row(_ label: String, _ value: String) { out += "  " + (label + ":").padding(toLength: 20, withPad: " ", startingAt: 0) + value + "\n" }
        row("table", "inet \(daemon.table)")
        row("nflog group", "\(daemon.nflogGroup)")
        row("state directory", daemon.stateDirectory)
        row("control socket", daemon.controlSocket)
        row("first knocks", "\(daemon.firstKnockCapacity) entries (\(daemon.firstKnockCapacity * 16 / 1_048_576) MiB at most)")
        for rule in configuration.rules {
            out += "\nrule \(rule.name)\n"
            row("knock", rule.knockSequence.map(\.description).joined(separator: " "))
            row("protocol", protocols(rule.knockSequence))
            row("time", rule.maxKnockGap.map(durationText) ?? "no limit")
            row("strict", rule.strict ? "yes" : "no")
            row("autoclose", rule.autoclose.map(durationText) ?? "never")
            if let spa = rule.spa {
                row(
                    "spa",
                    "\(spa.format), close secret: \(spa.closeSecret == nil ? "no" : "yes"), clock skew: \(spa.clockSkewMinutes) min")
            } else if let spa2 = rule.spa2 {
                let clients = configuration.clients.filter { $0.rules.contains(rule.name) }
                    .map { "\($0.id) (\($0.key.kind)\($0.mayNameAddress ? ", may name an address" : ""))" }
                row(
                    "spa",
                    "v2, named addresses: \(spa2.allowNamedAddress ? "allowed" : "no"), clients: \(clients.isEmpty ? "none" : clients.joined(separator: ", "))")
            } else if let fwknop = rule.fwknop {
                let clients = configuration.fwknopClients.filter { $0.rules.contains(rule.name) }.map(\.id)
                row(
                    "spa",
                    "fwknop, HMAC required, clock window: \(durationText(configuration.daemon.fwknopClockWindow)), source address required: "
                        + "\(fwknop.requireSourceAddress ? "yes" : "no"), named addresses: \(fwknop.allowNamedAddress ? "allowed" : "no"), "
                        + "clients: \(clients.isEmpty ? "none" : clients.joined(separator: ", "))")
            } else {
                row("spa", "no")
            }
            row("protect", rule.protectedPorts.isEmpty ? "nothing" : rule.protectedPorts.map(\.description).joined(separator: " "))
            row("max tracked peers", "\(rule.maxTrackedPeers)")
            row("max allowed peers", "\(rule.maxAllowedPeers)")
            if rule.spa == nil && rule.spa2 == nil && !rule.strict {
                row("max wrong knocks", rule.maxWrongKnocks == 0 ? "no limit" : "\(rule.maxWrongKnocks)")
            }
        }
        return out
    }

    /// `tcp`, `udp` or `tcp, udp`: the protocols a knock sequence uses.
    static func protocols(_ ports: [ServicePort]) -> String {
        TransportProtocol.allCases.filter { transport in ports.contains { $0.transport == transport } }
            .map(\.description).joined(separator: ", ")
    }

    /// A duration in the largest unit that divides it: `90s`, `30m`, `4h`, `1d`.
    static func durationText(_ duration: Duration) -> String {
        let seconds = duration.wholeSeconds
        for (unit, size) in [("d", Int64(86400)), ("h", 3600), ("m", 60)] where seconds >= size && seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }

    static func json(_ report: CheckReport) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(report) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// The `--format json` document of `pknock check`.
///
/// Durations are whole seconds; null means none. Never holds secrets.
struct CheckReport: Encodable {
    struct Daemon: Encodable {
        var table: String
        var nflog_group: UInt16
        var state_directory: String
        var control_socket: String
        var max_tracked_peers: Int
        var first_knock_capacity: Int
    }

    struct SPA: Encodable {
        var format: String
        var close_secret: Bool
        var clock_skew_minutes: Int
    }

    struct RuleReport: Encodable {
        var name: String
        var knock: [String]
        var `protocol`: String
        var time_seconds: Int64?
        var strict: Bool
        var autoclose_seconds: Int64?
        var spa: SPA?
        var protect: [String]
        var max_tracked_peers: Int
        var max_allowed_peers: Int
        var max_wrong_knocks: Int

        func encode(to encoder: Encoder) throws {
            // Spelled out so that absent values are written as null rather than left out.
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(name, forKey: .name)
            try container.encode(knock, forKey: .knock)
            try container.encode(`protocol`, forKey: .protocol)
            try container.encode(time_seconds, forKey: .time_seconds)
            try container.encode(strict, forKey: .strict)
            try container.encode(autoclose_seconds, forKey: .autoclose_seconds)
            try container.encode(spa, forKey: .spa)
            try container.encode(protect, forKey: .protect)
            try container.encode(max_tracked_peers, forKey: .max_tracked_peers)
            try container.encode(max_allowed_peers, forKey: .max_allowed_peers)
            try container.encode(max_wrong_knocks, forKey: .max_wrong_knocks)
        }

        enum Keys: String, CodingKey {
            case name, knock, `protocol`, time_seconds, strict, autoclose_seconds, spa, protect, max_tracked_peers,
                max_allowed_peers, max_wrong_knocks
        }
    }

    struct Diagnostic: Encodable {
        var severity: String
        var file: String
        var line: Int?
        var rule: String?
        var field: String?
        var message: String

        init(_ diagnostic: ConfigDiagnostic) {
            severity = diagnostic.severity.rawValue
            file = diagnostic.file
            line = diagnostic.line
            rule = diagnostic.rule
            field = diagnostic.field
            message = diagnostic.message
        }
    }

    var ok: Bool
    var daemon: Daemon?
    var rules: [RuleReport]
    var warnings: [Diagnostic]
    var errors: [Diagnostic]

    init(_ configuration: Configuration) {
        let settings = configuration.daemon
        ok = true
        daemon = Daemon(
            table: settings.table, nflog_group: settings.nflogGroup, state_directory: settings.stateDirectory,
            control_socket: settings.controlSocket, max_tracked_peers: settings.maxTrackedPeers,
            first_knock_capacity: settings.firstKnockCapacity)
        rules = configuration.rules.map { rule in
            RuleReport(
                name: rule.name.rawValue,
                knock: rule.knockSequence.map(\.description),
                protocol: Check.protocols(rule.knockSequence),
                time_seconds: rule.maxKnockGap?.wholeSeconds,
                strict: rule.strict,
                autoclose_seconds: rule.autoclose?.wholeSeconds,
                spa: rule.spa.map {
                    SPA(format: $0.format.rawValue, close_secret: $0.closeSecret != nil, clock_skew_minutes: $0.clockSkewMinutes)
                },
                protect: rule.protectedPorts.map(\.description),
                max_tracked_peers: rule.maxTrackedPeers,
                max_allowed_peers: rule.maxAllowedPeers,
                max_wrong_knocks: rule.maxWrongKnocks)
        }
        warnings = configuration.warnings.map(Diagnostic.init)
        errors = []
    }

    init(errors: [ConfigDiagnostic]) {
        ok = false
        daemon = nil
        rules = []
        warnings = []
        self.errors = errors.map(Diagnostic.init)
    }
}
