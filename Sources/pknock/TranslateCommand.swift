import ArgumentParser
import Foundation
import KnockConfig
import KnockCore

/// `pknock translate`: turn xt_pknock iptables rules or a knockd.conf into pknock.toml.
struct Translate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Translate xt_pknock iptables rules, a knockd.conf or fwknopd's access.conf into pknock.toml.",
        discussion: """
            FILE is iptables-save output (or a script of iptables commands) whose rules use -m pknock, or a \
            knockd configuration ([options] and door sections), or fwknopd's access.conf (SOURCE stanzas; \
            with --fwknopd-conf its fwknopd.conf for the SPA port and packet age). The TOML goes to standard output; what \
            could not be carried over is written as a comment in it and as a warning on standard error. \
            Check the result with `pknock check`. Exit status: 0, or 2 when the input cannot be translated.
            """
    )

    /// Which syntax FILE is in.
    enum InputFormat: String, ExpressibleByArgument, CaseIterable {
        case auto
        case iptables
        case knockd
        case fwknop
    }

    @Argument(help: "The file to translate.")
    var file: String

    @Option(help: "The input syntax: auto, iptables, knockd or fwknop.")
    var from: InputFormat = .auto

    @Option(name: .customLong("fwknopd-conf"), help: ArgumentHelp("fwknop: fwknopd.conf, for its SPA port.", valueName: "file"))
    var fwknopdConf: String?

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CLIFailure("cannot read \(file)")
        }
        let text = String(decoding: data, as: UTF8.self)
        let format = from == .auto ? Translation.detect(text) : from
        let result: Translation
        if format == .fwknop || fwknopdConf != nil {
            var serverConfig: (String, String)?
            if let path = fwknopdConf {
                guard let data = FileManager.default.contents(atPath: path) else { throw CLIFailure("cannot read \(path)") }
                serverConfig = (String(decoding: data, as: UTF8.self), path)
            }
            let translation = Translation.fwknop(access: text, file: file, serverConfig: serverConfig)
            for warning in translation.warnings { FileHandle.standardError.write(Data("pknock translate: warning: \(warning)\n".utf8)) }
            print(translation.toml, terminator: "")
            return
        }
        do {
            result = format == .knockd ? Translation.knockd(text, file: file) : try Translation.iptables(text, file: file)
        } catch {
            for diagnostic in error.diagnostics { FileHandle.standardError.write(Data("\(diagnostic)\n".utf8)) }
            throw ExitCode(2)
        }
        for warning in result.warnings { FileHandle.standardError.write(Data("pknock translate: warning: \(warning)\n".utf8)) }
        print(result.toml, terminator: "")
    }
}

/// A translated configuration: the TOML text and what did not carry over.
struct Translation: Equatable {
    /// pknock.toml text.
    var toml: String
    /// Things the administrator must look at (also written as comments in the TOML).
    var warnings: [String]

    /// fwknop for an access.conf, knockd when the text has INI sections with a `sequence`, otherwise iptables.
    static func detect(_ text: String) -> Translate.InputFormat {
        if looksLikeFwknopAccess(text) { return .fwknop }
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        let hasSection = lines.contains { $0.hasPrefix("[") && $0.hasSuffix("]") }
        let hasSequence = lines.contains { $0.lowercased().hasPrefix("sequence") }
        return hasSection && hasSequence ? .knockd : .iptables
    }

    // MARK: iptables

    /// Translates iptables rules using `-m pknock` through KnockConfig's rules-file parser.
    static func iptables(_ text: String, file: String) throws(ConfigError) -> Translation {
        let configuration = try ConfigLoader.parseRulesFile(text, file: file)
        var warnings = configuration.warnings.map(\.message)
        var out = "# Translated by `pknock translate` from \(file) (xt_pknock iptables rules).\n"
        for rule in configuration.rules {
            if rule.spa != nil {
                warnings.append(
                    "rule \(rule.name): the secrets were inline in the iptables rules and are inline here; move them to open_secret_file/close_secret_file, readable only by root"
                )
            }
            var notes: [String] = []
            if rule.maxWrongKnocks != tomlDefaultMaxWrongKnocks(rule) {
                let note =
                    "xt_pknock's behaviour is kept: any number of wrong knocks, so a port sweep can complete the sequence; delete max_wrong_knocks to get pknock's default of \(Rule.defaultMaxWrongKnocks), which stops sweeps"
                notes.append(note)
                warnings.append("rule \(rule.name): \(note)")
            }
            out += "\n" + render(rule, hooks: nil, notes: notes)
        }
        return Translation(toml: out, warnings: warnings)
    }

    // MARK: knockd

    /// Translates a knockd.conf: each door with an opening command becomes a rule.
    ///
    /// `sequence` → knock, `seq_timeout` → time (knockd times the whole sequence, we time each gap:
    /// ours is more lenient, said in a warning), `start_command`/`command` → on_open, `stop_command` →
    /// on_close, `cmd_timeout` → autoclose. A command that merely adds an iptables ACCEPT for %IP% on
    /// a port becomes `protect` (pknockd does that itself); a door whose command deletes such a rule
    /// (knockd's closing door) is left out, since access ends by autoclose or `pknock close`.
    static func knockd(_ text: String, file: String) -> Translation {
        var warnings: [String] = []
        var sections: [(name: String, line: Int, keys: [(key: String, value: String, line: Int)])] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                sections.append((String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces), index + 1, []))
                continue
            }
            guard !sections.isEmpty else {
                warnings.append("\(file):\(index + 1): ignored text outside any section")
                continue
            }
            if let equals = line.firstIndex(of: "=") {
                let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
                let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
                sections[sections.count - 1].keys.append((key, value, index + 1))
            } else {
                sections[sections.count - 1].keys.append((line.lowercased(), "", index + 1))
            }
        }

        var out = "# Translated by `pknock translate` from \(file) (knockd configuration).\n"
        var usedNames: Set<String> = []
        for section in sections {
            if section.name.lowercased() == "options" {
                for (key, _, line) in section.keys {
                    switch key {
                    case "usesyslog", "logfile", "pidfile":
                        warnings.append("\(file):\(line): [options] \(key): pknockd logs to standard error (journald under systemd)")
                    case "interface":
                        warnings.append("\(file):\(line): [options] interface: pknockd listens on every interface")
                    default:
                        warnings.append("\(file):\(line): [options] \(key) has no pknock equivalent")
                    }
                }
                continue
            }
            let label = "[\(section.name)]"
            var notes: [String] = []
            var knocks: [ServicePort] = []
            var gap: Duration?
            var autoclose: Duration?
            var open: String?
            var close: String?
            var failed = false
            func warn(_ line: Int, _ message: String) {
                warnings.append("\(file):\(line): \(label) \(message)")
                notes.append(message)
            }
            for (key, value, line) in section.keys {
                switch key {
                case "sequence":
                    for item in value.split(separator: ",") {
                        let parts = item.trimmingCharacters(in: .whitespaces).split(separator: ":")
                        let transport = parts.count > 1 ? TransportProtocol(name: parts[1].trimmingCharacters(in: .whitespaces)) : .tcp
                        guard let port = parts.first.flatMap({ Port($0) }), let transport, parts.count <= 2 else {
                            warnings.append("\(file):\(line): \(label) sequence item \"\(item)\" is not PORT[:tcp|udp]; door skipped")
                            failed = true
                            break
                        }
                        knocks.append(ServicePort(port, transport))
                    }
                case "seq_timeout":
                    if let seconds = Int64(value), seconds > 0 {
                        gap = .seconds(seconds)
                        warn(line, "seq_timeout \(seconds): knockd limits the whole sequence, pknock each gap between knocks (more lenient)")
                    } else {
                        warn(line, "seq_timeout \"\(value)\" is not a number of seconds; left out")
                    }
                case "command", "start_command", "open_command":
                    open = value
                case "stop_command", "close_command":
                    close = value
                case "cmd_timeout":
                    if let seconds = Int64(value), seconds > 0 {
                        autoclose = .seconds(seconds)
                    } else {
                        warn(line, "cmd_timeout \"\(value)\" is not a number of seconds; left out")
                    }
                case "tcpflags":
                    if value.lowercased() != "syn" {
                        warn(line, "tcpflags = \(value): pknock counts TCP SYNs only")
                    }
                case "one_time_sequences":
                    warn(line, "one_time_sequences has no pknock equivalent; consider an SPA rule (open_secret_file)")
                case "sequence_file":
                    warn(line, "sequence_file has no pknock equivalent")
                case "target", "interface":
                    warn(line, "\(key) has no pknock equivalent; pknock listens on every address of the host")
                default:
                    warn(line, "\(key) has no pknock equivalent")
                }
            }
            if failed { continue }
            guard !knocks.isEmpty else {
                warnings.append("\(file):\(section.line): \(label) has no sequence; skipped")
                continue
            }
            if let open, Self.isIptablesDelete(open) {
                warnings.append(
                    "\(file):\(section.line): \(label) removes an iptables rule (a knockd closing door); skipped: access ends by autoclose, a close knock or `pknock close`"
                )
                continue
            }
            var protect: [ServicePort] = []
            if let command = open, let port = Self.iptablesAcceptPort(command) {
                protect = [port]
                open = nil
                notes.append("the open command `\(command)` became protect = [\(port)]; pknockd adds the address itself")
                if let stop = close, Self.iptablesAcceptPort(stop) != nil, Self.isIptablesDelete(stop) { close = nil }
            } else if open != nil {
                warnings.append(
                    "\(file):\(section.line): \(label) kept its command as on_open; set protect = [...] if pknockd should open the port itself")
            }
            if autoclose == nil && !protect.isEmpty {
                warn(section.line, "no cmd_timeout: access lasts until `pknock close`; consider autoclose = \"1h\"")
            }
            var name = Self.ruleName(section.name)
            var suffix = 2
            while usedNames.contains(name) {
                name = String(Self.ruleName(section.name).prefix(RuleName.maximumLength - 2)) + "_\(suffix)"
                suffix += 1
            }
            usedNames.insert(name)
            guard let ruleName = RuleName(rawValue: name) else { continue }
            if knocks.count > Rule.maximumKnockPorts {
                warnings.append("\(file):\(section.line): \(label) has \(knocks.count) knocks; pknock allows at most \(Rule.maximumKnockPorts)")
            }
            // A door is a non-strict sequence: it gets pknock's wrong-knock budget, as written by hand.
            var rule = Rule(name: ruleName, knockSequence: knocks, maxKnockGap: gap, autoclose: autoclose, protectedPorts: protect)
            rule.maxWrongKnocks = tomlDefaultMaxWrongKnocks(rule)
            out += "\n" + render(rule, hooks: RuleHooks(onOpen: open, onClose: close), notes: notes)
        }
        return Translation(toml: out, warnings: warnings)
    }

    /// The `max_wrong_knocks` a pknock.toml rule gets when it does not say (KnockConfig's default).
    static func tomlDefaultMaxWrongKnocks(_ rule: Rule) -> Int {
        !rule.strict && rule.spa == nil && rule.spa2 == nil && rule.fwknop == nil ? Rule.defaultMaxWrongKnocks : 0
    }

    /// A valid rule name from a knockd section name: other characters become '_', at most 31.
    static func ruleName(_ section: String) -> String {
        let mapped = String(section.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") ? $0 : "_" })
        let trimmed = String(mapped.prefix(RuleName.maximumLength))
        return trimmed.isEmpty ? "door" : trimmed
    }

    /// Whether `command` is an iptables command deleting a rule (`-D`/`--delete`).
    static func isIptablesDelete(_ command: String) -> Bool {
        let words = command.split(separator: " ")
        return (words.first.map { $0.hasSuffix("iptables") || $0.hasSuffix("ip6tables") } ?? false)
            && words.contains { $0 == "-D" || $0 == "--delete" }
    }

    /// The port of an `iptables -A|-I|-D … -s %IP% -p PROTO --dport N -j ACCEPT` command, or nil.
    static func iptablesAcceptPort(_ command: String) -> ServicePort? {
        let words = command.split(separator: " ").map(String.init)
        guard let first = words.first, first.hasSuffix("iptables") || first.hasSuffix("ip6tables"),
            words.contains("%IP%"), let jump = words.firstIndex(where: { $0 == "-j" || $0 == "--jump" }),
            words.indices.contains(jump + 1), words[jump + 1] == "ACCEPT",
            let dport = words.firstIndex(where: { $0 == "--dport" || $0 == "--destination-port" }),
            words.indices.contains(dport + 1), let port = Port(words[dport + 1])
        else { return nil }
        var transport = TransportProtocol.tcp
        if let p = words.firstIndex(where: { $0 == "-p" || $0 == "--protocol" }), words.indices.contains(p + 1) {
            guard let named = TransportProtocol(name: words[p + 1]) else { return nil }
            transport = named
        }
        return ServicePort(port, transport)
    }

    // MARK: Rendering

    /// One `[[rule]]` table, with `notes` as comments above it.
    static func render(_ rule: Rule, hooks: RuleHooks?, notes: [String]) -> String {
        var out = ""
        for note in notes { out += "# NOTE: \(note)\n" }
        out += "[[rule]]\n"
        out += "name = \(quoted(rule.name.rawValue))\n"
        out += "knock = \(ports(rule.knockSequence))\n"
        if let gap = rule.maxKnockGap { out += "time = \(quoted(duration(gap)))\n" }
        if rule.strict { out += "strict = true\n" }
        if let autoclose = rule.autoclose { out += "autoclose = \(quoted(duration(autoclose)))\n" }
        if !rule.protectedPorts.isEmpty { out += "protect = \(ports(rule.protectedPorts))\n" }
        if let spa = rule.spa {
            if spa.format != .sha256 { out += "spa = \(quoted(spa.format.rawValue))\n" }
            out += "# Move the secrets into files readable only by root (open_secret_file, close_secret_file).\n"
            out += "open_secret = \(quoted(String(decoding: spa.openSecret.bytes, as: UTF8.self)))\n"
            if let close = spa.closeSecret { out += "close_secret = \(quoted(String(decoding: close.bytes, as: UTF8.self)))\n" }
            if spa.clockSkewMinutes != 1 { out += "clock_skew = \(spa.clockSkewMinutes)\n" }
        }
        if rule.maxWrongKnocks != tomlDefaultMaxWrongKnocks(rule) { out += "max_wrong_knocks = \(rule.maxWrongKnocks)\n" }
        if rule.maxTrackedPeers != Rule.defaultMaxTrackedPeers { out += "max_tracked_peers = \(rule.maxTrackedPeers)\n" }
        if rule.maxAllowedPeers != Rule.defaultMaxAllowedPeers { out += "max_allowed_peers = \(rule.maxAllowedPeers)\n" }
        if let onOpen = hooks?.onOpen { out += "on_open = \(quoted(onOpen))\n" }
        if let onClose = hooks?.onClose { out += "on_close = \(quoted(onClose))\n" }
        return out
    }

    /// `[2002, 2001]` when all are TCP, else `["2002:tcp", "4000:udp"]`.
    static func ports(_ ports: [ServicePort]) -> String {
        if ports.allSatisfy({ $0.transport == .tcp }) { return "[" + ports.map { "\($0.port)" }.joined(separator: ", ") + "]" }
        return "[" + ports.map { quoted($0.description) }.joined(separator: ", ") + "]"
    }

    /// The largest whole unit: "90s", "10m", "2h", "1d".
    static func duration(_ value: Duration) -> String {
        let seconds = value.wholeSeconds
        for (unit, size) in [("d", Int64(86_400)), ("h", 3600), ("m", 60)] where seconds >= size && seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }

    /// A TOML basic string.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += String(format: "\\u%04X", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
