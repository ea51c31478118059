import KnockCore

/// A word of a rules-file command and the line it is on.
struct RulesToken: Equatable {
    var text: String
    var line: Int
}

/// Splits a rules file into commands: shell-like words with '…' and "…" quoting, `\` escapes,
/// `\`-newline continuation and `#` comments.
enum RulesTokenizer {
    static func commands(_ text: String, file: String) -> (commands: [[RulesToken]], errors: [ConfigDiagnostic]) {
        var commands: [[RulesToken]] = []
        var errors: [ConfigDiagnostic] = []
        var command: [RulesToken] = []
        var word: [Character] = []
        var inWord = false
        var wordLine = 1
        var line = 1
        var characters = Array(text)[...]
        var skipToEndOfLine = false

        func endWord() {
            if inWord { command.append(RulesToken(text: String(word), line: wordLine)) }
            word = []
            inWord = false
        }
        func startWord() {
            if !inWord { wordLine = line }
            inWord = true
        }
        func endCommand() {
            endWord()
            if !command.isEmpty { commands.append(command) }
            command = []
        }

        while let character = characters.popFirst() {
            if skipToEndOfLine {
                if character == "\n" || character == "\r\n" {
                    skipToEndOfLine = false
                    line += 1
                }
                continue
            }
            switch character {
            case "\n", "\r\n":
                endCommand()
                line += 1
            case " ", "\t":
                endWord()
            case "#" where !inWord:
                endCommand()
                skipToEndOfLine = true
            case "\\":
                guard let next = characters.popFirst() else {
                    startWord()
                    word.append(character)
                    continue
                }
                if next == "\n" || next == "\r\n" {
                    endWord()  // continuation: the command goes on on the next line
                    line += 1
                } else {
                    startWord()
                    word.append(next)
                }
            case "'", "\"":
                startWord()
                var closed = false
                while let inner = characters.first, inner != "\n", inner != "\r\n" {
                    characters.removeFirst()
                    if inner == character {
                        closed = true
                        break
                    }
                    if character == "\"", inner == "\\", let escaped = characters.first, escaped == "\"" || escaped == "\\" {
                        characters.removeFirst()
                        word.append(escaped)
                    } else {
                        word.append(inner)
                    }
                }
                if !closed {
                    errors.append(ConfigDiagnostic(file: file, line: line, "unterminated \(character) quote"))
                    word = []
                    inWord = false
                    command = []
                    skipToEndOfLine = true
                }
            default:
                startWord()
                word.append(character)
            }
        }
        endCommand()
        return (commands, errors)
    }
}

/// One parsed rules-file command: the options it gave, each with its line.
struct RulesCommand {
    var line: Int
    var transport: TransportProtocol?
    var knockPorts: [Port]?
    var name: String?
    var time: Int64?
    var strict = false
    var autoclose: Int64?
    var openSecret: String?
    var closeSecret: String?
    var secure: String?
    var checkIP = false
    var destinationPort: Port?
    var target: String?
    /// The line of each option given, keyed by its canonical spelling (`--knockports`, `--dport`, …).
    var optionLines: [String: Int] = [:]

    func line(of option: String) -> Int { optionLines[option] ?? line }
}

/// Reads xt_pknock iptables rules (the original's syntax) into KnockCore rules.
struct RulesFileReader {
    let file: String
    private(set) var diagnostics: [ConfigDiagnostic] = []

    init(file: String) { self.file = file }

    // MARK: One command

    /// Parses the options of one command; nil when it has an error (already recorded).
    mutating func parse(_ tokens: [RulesToken]) -> RulesCommand? {
        guard let first = tokens.first else { return nil }
        var command = RulesCommand(line: first.line)
        var index = 0
        if let program = first.text.split(separator: "/").last, program == "iptables" || program == "ip6tables" {
            index = 1
        }
        var modules: Set<String> = []
        var lastWasSecret = false

        func fail(_ token: RulesToken, _ message: String) -> RulesCommand? {
            diagnostics.append(ConfigDiagnostic(file: file, line: token.line, message))
            return nil
        }

        while index < tokens.count {
            let token = tokens[index]
            index += 1
            let option = Self.canonical(token.text)
            let wasSecret = lastWasSecret
            lastWasSecret = false

            if Self.flags.contains(option) || Self.takesArgument.contains(option) {
                if command.optionLines[option] != nil, option != "-m" {
                    return fail(token, "\(token.text) is given twice")
                }
                command.optionLines[option] = token.line
            }
            if Self.pknockOptions.contains(option), !modules.contains("pknock") {
                return fail(token, "\(token.text) needs -m pknock before it")
            }
            if Self.flags.contains(option) {
                switch option {
                case "--strict": command.strict = true
                default: command.checkIP = true
                }
                continue
            }
            guard Self.takesArgument.contains(option) else {
                if token.text.hasPrefix("-") || token.text == "!" {
                    return fail(token, "unsupported option \"\(token.text)\"")
                }
                if wasSecret {
                    return fail(token, "unexpected argument after a secret; quote a secret that contains spaces")
                }
                return fail(token, "unexpected argument \"\(token.text)\"")
            }
            // A secret may start with '-'; any other value that does is the next option.
            let secretOption = ["--opensecret", "--closesecret", "--secure"].contains(option)
            guard index < tokens.count, secretOption || !(tokens[index].text.hasPrefix("-") && tokens[index].text.count > 1) else {
                return fail(token, "\(token.text) needs a value")
            }
            let argument = tokens[index]
            index += 1
            let value = argument.text

            switch option {
            case "-A":
                break
            case "-I":
                if index < tokens.count, tokens[index].text.allSatisfy({ $0.isASCII && $0.isNumber }) { index += 1 }
            case "-p":
                guard let transport = TransportProtocol(name: value) else {
                    return fail(argument, "protocol \"\(value)\" is not supported (tcp or udp)")
                }
                command.transport = transport
            case "-m":
                guard ["pknock", "tcp", "udp", "state", "conntrack"].contains(value) else {
                    return fail(argument, "match \"\(value)\" is not supported (pknock, tcp, udp, state, conntrack)")
                }
                modules.insert(value)
            case "--state", "--ctstate":
                let module = option == "--state" ? "state" : "conntrack"
                guard modules.contains(module) else { return fail(token, "\(token.text) needs -m \(module) before it") }
                guard value == "NEW" else { return fail(argument, "\(token.text) \(value) is not supported: only NEW") }
            case "--dport":
                guard command.transport != nil else { return fail(token, "\(token.text) needs -p tcp or -p udp before it") }
                switch ValueSyntax.port(Substring(value)) {
                case .success(let port): command.destinationPort = port
                case .failure(let message): return fail(argument, "\(token.text): \(message.text)")
                }
            case "--knockports":
                var ports: [Port] = []
                for part in value.split(separator: ",", omittingEmptySubsequences: false) {
                    switch ValueSyntax.port(part) {
                    case .success(let port): ports.append(port)
                    case .failure(let message): return fail(argument, "--knockports: \(message.text)")
                    }
                }
                command.knockPorts = ports
            case "--name":
                command.name = value
            case "--time", "--autoclose":
                guard !value.isEmpty, value.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int64(value) else {
                    return fail(argument, "\(option) needs a whole number of \(option == "--time" ? "seconds" : "minutes"), found \"\(value)\"")
                }
                if option == "--time" { command.time = number } else { command.autoclose = number }
            case "--opensecret":
                command.openSecret = value
                lastWasSecret = true
            case "--closesecret":
                command.closeSecret = value
                lastWasSecret = true
            case "--secure":
                command.secure = value
                lastWasSecret = true
            case "-j":
                guard value == "ACCEPT" || value == "DROP" else {
                    return fail(argument, "target \"\(value)\" is not supported (ACCEPT or DROP)")
                }
                command.target = value
            default:
                break
            }
        }
        return command
    }

    /// The long options' short and alternative spellings, mapped to one name each.
    private static func canonical(_ option: String) -> String {
        switch option {
        case "--append": "-A"
        case "--insert": "-I"
        case "--protocol": "-p"
        case "--match": "-m"
        case "--jump": "-j"
        case "--destination-port": "--dport"
        case "--chkip": "--checkip"
        default: option
        }
    }

    private static let flags: Set<String> = ["--strict", "--checkip"]
    private static let takesArgument: Set<String> = [
        "-A", "-I", "-p", "-m", "--state", "--ctstate", "--dport", "--knockports", "--name", "--time", "--autoclose",
        "--opensecret", "--closesecret", "--secure", "-j",
    ]
    private static let pknockOptions: Set<String> = [
        "--knockports", "--name", "--time", "--strict", "--autoclose", "--opensecret", "--closesecret", "--secure", "--checkip",
    ]

    // MARK: Whole file

    /// A knock command (defines a rule) or a `--checkip` command (adds protected ports to one).
    private enum Role {
        case knock(Rule, RulesCommand)
        case checkIP(RuleName, ServicePort, RulesCommand)
    }

    /// The original's checkentry refusals and ours for one command; nil when it has errors.
    private mutating func role(of command: RulesCommand) -> Role? {
        let errorsBefore = diagnostics.filter(\.isError).count
        func error(_ option: String?, _ message: String) {
            diagnostics.append(
                ConfigDiagnostic(
                    file: file, line: option.map(command.line(of:)) ?? command.line, rule: command.name, field: option, message))
        }
        guard let nameText = command.name else {
            error(nil, "--name is required")
            return nil
        }
        if let problem = RuleName.problem(with: nameText) { error("--name", problem) }

        if command.checkIP {
            for option in ["--knockports", "--opensecret", "--closesecret", "--secure", "--time", "--autoclose"]
            where command.optionLines[option] != nil {
                error(option, "cannot be combined with --checkip")
            }
            if command.destinationPort == nil {
                error("--checkip", "needs --dport: PortKnockO protects named ports, not all traffic")
            }
            if command.target == "DROP" { error("-j", "DROP on a --checkip rule would block the allowed peers; use -j ACCEPT") }
            if command.strict {
                diagnostics.append(
                    ConfigDiagnostic(
                        .warning, file: file, line: command.line(of: "--strict"), rule: nameText, field: "--strict",
                        "has no effect with --checkip"))
            }
        } else {
            if command.knockPorts == nil { error(nil, "--knockports or --checkip is required") }
            if command.secure != nil {
                for option in ["--opensecret", "--closesecret"] where command.optionLines[option] != nil {
                    error(option, "cannot be combined with --secure")
                }
            } else if command.openSecret != nil, command.closeSecret == nil {
                error("--opensecret", "needs --closesecret as well")
            } else if command.closeSecret != nil, command.openSecret == nil {
                error("--closesecret", "needs --opensecret as well")
            }
            if command.destinationPort != nil, command.target == "DROP" {
                error("-j", "DROP with --dport would block the peers that knocked; use -j ACCEPT")
            }
        }
        guard diagnostics.filter(\.isError).count == errorsBefore, let name = RuleName(rawValue: nameText) else { return nil }

        let transport = command.transport ?? .tcp
        if command.checkIP {
            guard let port = command.destinationPort else { return nil }
            return .checkIP(name, ServicePort(port, transport), command)
        }
        var spa: SPASettings?
        if let secure = command.secure {
            spa = SPASettings(format: .md5, openSecret: Secret(secure), closeSecret: nil)
        } else if let open = command.openSecret {
            spa = SPASettings(format: .sha256, openSecret: Secret(open), closeSecret: command.closeSecret.map(Secret.init))
        }
        if spa != nil {
            let option = command.secure != nil ? "--secure" : "--opensecret"
            diagnostics.append(
                ConfigDiagnostic(
                    .warning, file: file, line: command.line(of: option), rule: nameText, field: option,
                    "the secret is written in the rules file; in pknock.toml keep it in open_secret_file, readable only by root"
                ))
        }
        let rule = Rule(
            name: name,
            knockSequence: (command.knockPorts ?? []).map { ServicePort($0, transport) },
            maxKnockGap: command.time.map { .seconds($0) },
            strict: command.strict,
            autoclose: command.autoclose.flatMap { $0 == 0 ? nil : .seconds($0 * 60) },
            spa: spa,
            protectedPorts: command.destinationPort.map { [ServicePort($0, transport)] } ?? [],
            // The original counts no wrong knocks against a non-strict attempt; keep its semantics.
            maxWrongKnocks: 0)
        return .knock(rule, command)
    }

    /// Reads every command, merges knock and `--checkip` commands by name, and checks the rules.
    mutating func read(_ text: String) -> [Rule] {
        let (commands, tokenErrors) = RulesTokenizer.commands(text, file: file)
        diagnostics += tokenErrors
        var rules: [Rule] = []
        var sites: [RuleSite] = []
        var checks: [(RuleName, ServicePort, RulesCommand)] = []
        for tokens in commands {
            guard let command = parse(tokens), let role = role(of: command) else { continue }
            switch role {
            case .checkIP(let name, let port, let command):
                checks.append((name, port, command))
            case .knock(let rule, let command):
                if let index = rules.firstIndex(where: { $0.name == rule.name }) {
                    // The same knock settings on several lines (say one per protected port) are one rule.
                    var merged = rule
                    merged.protectedPorts = rules[index].protectedPorts
                    guard merged == rules[index] else {
                        diagnostics.append(
                            ConfigDiagnostic(
                                file: file, line: command.line(of: "--name"), rule: rule.name.rawValue, field: "--name",
                                "a knock rule of this name with other settings is on line \(sites[index].line)"))
                        continue
                    }
                    for port in rule.protectedPorts where !rules[index].protectedPorts.contains(port) {
                        rules[index].protectedPorts.append(port)
                    }
                } else {
                    rules.append(rule)
                    sites.append(Self.site(of: command))
                }
            }
        }
        for (name, port, command) in checks {
            guard let index = rules.firstIndex(where: { $0.name == name }) else {
                diagnostics.append(
                    ConfigDiagnostic(
                        file: file, line: command.line(of: "--checkip"), rule: name.rawValue, field: "--checkip",
                        "no knock rule (--knockports) has this name"))
                continue
            }
            if !rules[index].protectedPorts.contains(port) { rules[index].protectedPorts.append(port) }
            if sites[index].fieldLines["protect"] == nil { sites[index].fieldLines["protect"] = command.line(of: "--dport") }
        }
        diagnostics += RuleProblems.diagnostics(rules: rules, sites: sites, file: file)
        return rules
    }

    /// Where a knock command's options are, named as the rules file spells them.
    private static func site(of command: RulesCommand) -> RuleSite {
        var site = RuleSite(line: command.line)
        let secretOption = command.secure != nil ? "--secure" : "--opensecret"
        let options = [
            ("name", "--name"), ("knock", "--knockports"), ("time", "--time"), ("autoclose", "--autoclose"),
            ("open_secret", secretOption), ("close_secret", "--closesecret"), ("protect", "--dport"),
        ]
        for (field, option) in options {
            site.fieldNames[field] = option
            if let line = command.optionLines[option] { site.fieldLines[field] = line }
        }
        return site
    }
}
