/// Something wrong, or worth a warning, in a rule set.
public struct RuleProblem: Equatable, Sendable, CustomStringConvertible {
    /// Whether the problem stops the rules from loading.
    public enum Severity: String, Equatable, Sendable {
        /// The rules are refused.
        case error
        /// The rules load; the administrator is told.
        case warning
    }

    /// Error or warning.
    public var severity: Severity
    /// The rule's name as written (may be empty or invalid when that is the problem).
    public var rule: String
    /// The config key the problem is about, such as `name`, `knock`, `time`, `autoclose` or `open_secret`.
    public var field: String
    /// What is wrong, in words for an administrator.
    ///
    /// Never contains secret bytes.
    public var message: String

    /// Makes a problem.
    public init(_ severity: Severity, rule: String, field: String, _ message: String) {
        self.severity = severity
        self.rule = rule
        self.field = field
        self.message = message
    }

    /// `error: rule SSH: knock: …`.
    public var description: String {
        "\(severity.rawValue): rule \(rule.isEmpty ? "(unnamed)" : rule): \(field): \(message)"
    }
}

/// Secrets shorter than this are accepted with a warning.
public let recommendedMinimumSecretLength = 8

extension Rule {
    /// Every problem of this rule on its own: the original's checkentry refusals and ours.
    public func problems() -> [RuleProblem] {
        var found: [RuleProblem] = []
        let ruleName = name.rawValue
        func error(_ field: String, _ message: String) { found.append(RuleProblem(.error, rule: ruleName, field: field, message)) }
        func warning(_ field: String, _ message: String) { found.append(RuleProblem(.warning, rule: ruleName, field: field, message)) }

        if knockSequence.isEmpty {
            error("knock", "a rule needs at least one knock port")
        }
        if knockSequence.count > Rule.maximumKnockPorts {
            error("knock", "at most \(Rule.maximumKnockPorts) knock ports are allowed, found \(knockSequence.count)")
        }
        for (previous, next) in zip(knockSequence, knockSequence.dropFirst()) where previous == next {
            error("knock", "knock port \(next) appears twice in a row; a repeated knock is taken as a retransmission")
        }
        let numbers = knockSequence.map(\.port.rawValue)
        if numbers.count >= 2, spa == nil, spa2 == nil {
            if zip(numbers, numbers.dropFirst()).allSatisfy({ $0 < $1 }) {
                warning(
                    "knock",
                    "the knock ports are in ascending order, the order of a port sweep: a scan of the port range "
                        + "knocks the sequence; choose an order no sweep follows")
            } else if zip(numbers, numbers.dropFirst()).allSatisfy({ $0 > $1 }) {
                warning(
                    "knock",
                    "the knock ports are in descending order, the order of a reverse port sweep; "
                        + "choose an order no sweep follows")
            }
        }
        if let gap = maxKnockGap, gap <= .zero {
            error("time", "the time between knocks must be positive")
        }
        if let autoclose, autoclose <= .zero {
            error("autoclose", "autoclose must be positive; leave it out (or 0) for no autoclose")
        }
        if let spa {
            if knockSequence.count != 1 {
                error("knock", "an SPA rule (open_secret) needs exactly one knock port, found \(knockSequence.count)")
            }
            if knockSequence.contains(where: { $0.transport != .udp }) {
                error("knock", "SPA knocks are UDP only")
            }
            checkSecret(spa.openSecret, field: "open_secret", error: error, warning: warning)
            if let close = spa.closeSecret {
                checkSecret(close, field: "close_secret", error: error, warning: warning)
                if close == spa.openSecret {
                    error("close_secret", "the open and close secrets must differ")
                }
            } else if spa.format == .sha256 {
                error("close_secret", "open_secret and close_secret go together")
            }
            if !(0...60).contains(spa.clockSkewMinutes) {
                error("clock_skew", "clock_skew must be 0 to 60 minutes")
            }
        }
        if spa2 != nil {
            if spa != nil {
                error("spa", "a rule is opened by SPA v2 or by the original SPA formats, not both")
            }
            if knockSequence.count != 1 || knockSequence.contains(where: { $0.transport != .udp }) {
                error("knock", "an SPA v2 rule needs exactly one UDP knock port")
            }
        }
        if fwknop != nil {
            if spa != nil || spa2 != nil {
                error("spa", "a rule is opened by fwknop packets or by another SPA format, not both")
            }
            if knockSequence.count != 1 || knockSequence.contains(where: { $0.transport != .udp }) {
                error("knock", "an fwknop rule needs exactly one UDP knock port (fwknop's default is 62201)")
            }
        }
        for port in protectedPorts where knockSequence.contains(port) {
            error("protect", "port \(port) is both a knock port and a protected port")
        }
        if protectedPorts.isEmpty {
            warning("protect", "the rule protects no port; knocks only change its peer listing")
        }
        if maxTrackedPeers < 1 {
            error("max_tracked_peers", "must be at least 1")
        }
        if maxAllowedPeers < 1 {
            error("max_allowed_peers", "must be at least 1")
        }
        if !(0...Rule.maximumWrongKnocks).contains(maxWrongKnocks) {
            error("max_wrong_knocks", "must be 0 (no limit) to \(Rule.maximumWrongKnocks)")
        }
        return found
    }

    private func checkSecret(
        _ secret: Secret, field: String, error: (String, String) -> Void, warning: (String, String) -> Void
    ) {
        if secret.bytes.isEmpty {
            error(field, "the secret is empty")
        } else if secret.bytes.count < recommendedMinimumSecretLength {
            warning(field, "the secret is shorter than \(recommendedMinimumSecretLength) bytes and easy to guess")
        }
    }
}

extension Collection<Rule> {
    /// Every problem of each rule, and those between rules: duplicate names, a port both knocked
    /// in one rule and protected by another.
    public func problems() -> [RuleProblem] {
        var found = flatMap { $0.problems() }
        var seen: Set<RuleName> = []
        for rule in self where !seen.insert(rule.name).inserted {
            found.append(RuleProblem(.error, rule: rule.name.rawValue, field: "name", "duplicate rule name"))
        }
        for rule in self {
            for other in self where other.name != rule.name {
                for port in rule.protectedPorts where other.knockSequence.contains(port) {
                    found.append(
                        RuleProblem(
                            .error, rule: rule.name.rawValue, field: "protect",
                            "port \(port) is a knock port of rule \(other.name)"))
                }
            }
        }
        return found
    }
}
