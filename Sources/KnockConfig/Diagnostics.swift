import KnockCore

/// One thing wrong (or worth a warning) in a configuration file, with where it was found.
///
/// Its description reads `file:12: rule SSH: knock: message`; warnings put `warning: ` after the
/// location. Messages never contain secret bytes.
public struct ConfigDiagnostic: Error, Equatable, Sendable, CustomStringConvertible {
    /// Whether the diagnostic stops the configuration from loading.
    public var severity: RuleProblem.Severity
    /// The file, as the caller named it.
    public var file: String
    /// The 1-based line, or nil when the problem is about the whole file (it cannot be read, say).
    public var line: Int?
    /// The rule's name as written, when the problem is about one rule.
    public var rule: String?
    /// The key or option the problem is about, such as `knock`, `time` or `--knockports`.
    public var field: String?
    /// What is wrong, in words for an administrator.
    public var message: String

    /// Makes a diagnostic.
    public init(
        _ severity: RuleProblem.Severity = .error, file: String, line: Int?, rule: String? = nil,
        field: String? = nil, _ message: String
    ) {
        self.severity = severity
        self.file = file
        self.line = line
        self.rule = rule
        self.field = field
        self.message = message
    }

    /// Whether this is an error (as opposed to a warning).
    public var isError: Bool { severity == .error }

    /// `file:12: rule SSH: knock: message`, or `file:12: warning: …` for a warning.
    public var description: String {
        var text = file
        if let line { text += ":\(line)" }
        text += ": "
        if severity == .warning { text += "warning: " }
        if let rule { text += "rule \(rule.isEmpty ? "(unnamed)" : rule): " }
        if let field { text += "\(field): " }
        return text + message
    }
}

/// A configuration that cannot be loaded, with every error found (not only the first).
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The errors, in file order as far as the parser could tell.
    public var diagnostics: [ConfigDiagnostic]

    /// Wraps diagnostics.
    public init(diagnostics: [ConfigDiagnostic]) { self.diagnostics = diagnostics }

    /// Wraps one diagnostic.
    public init(_ diagnostic: ConfigDiagnostic) { self.diagnostics = [diagnostic] }

    /// One diagnostic a line.
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
