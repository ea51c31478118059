import Foundation
import KnockCore

/// Which syntax a configuration file is written in.
public enum ConfigFormat: String, Equatable, Sendable {
    /// `pknock.toml`: the native format.
    case toml
    /// xt_pknock iptables rules, one a line, for migration.
    case rulesFile

    /// Decides by name, then by content: a `.toml` file is TOML, a `.rules` file is a rules file;
    /// otherwise a file whose first line that is neither blank nor a comment starts with `[`, or
    /// has `=` before any space, is TOML, and anything else is a rules file.
    public static func detect(path: String, text: String) -> ConfigFormat {
        if path.hasSuffix(".toml") { return .toml }
        if path.hasSuffix(".rules") { return .rulesFile }
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.drop { $0 == " " || $0 == "\t" }
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("[") { return .toml }
            let key = line.prefix { $0 != " " && $0 != "\t" && $0 != "=" }
            return line.dropFirst(key.count).drop { $0 == " " || $0 == "\t" }.hasPrefix("=") ? .toml : .rulesFile
        }
        return .toml
    }
}

/// Loads and validates PortKnockO configurations: `pknock.toml` or xt_pknock rules files.
public enum ConfigLoader {
    /// The configuration file the daemon and `pknock check` read by default.
    public static let defaultPath = "/etc/pknock/pknock.toml"

    /// Reads the file at `path` in the format ``ConfigFormat/detect(path:text:)`` picks.
    ///
    /// Secret files named in it are read through `secrets`, relative to the file's directory.
    public static func load(path: String, secrets: some SecretSource = FileSecretSource()) throws(ConfigError) -> Configuration {
        let text = try read(path)
        // The TOML parser skips one byte order mark itself (and refuses a second); nothing else expects one.
        let bare = text.unicodeScalars.first == "\u{FEFF}" ? String(text.unicodeScalars.dropFirst()) : text
        switch ConfigFormat.detect(path: path, text: bare) {
        case .toml: return try parseTOML(text, file: path, secrets: secrets)
        case .rulesFile: return try parseRulesFile(bare, file: path)
        }
    }

    /// Parses `pknock.toml` text; `file` names it in diagnostics and anchors relative secret paths.
    public static func parseTOML(_ text: String, file: String, secrets: some SecretSource) throws(ConfigError) -> Configuration {
        let root: TOMLTable
        do {
            root = try TOMLParser.parse(text, file: file)
        } catch {
            throw ConfigError(error)
        }
        var reader = TOMLConfigReader(file: file, secrets: secrets)
        var configuration = reader.read(root)
        configuration.warnings = try split(reader.diagnostics)
        return configuration
    }

    /// Parses xt_pknock iptables rules text; the daemon settings are the defaults.
    public static func parseRulesFile(_ text: String, file: String) throws(ConfigError) -> Configuration {
        var reader = RulesFileReader(file: file)
        let rules = reader.read(text)
        var diagnostics = reader.diagnostics
        if rules.isEmpty && !diagnostics.contains(where: \.isError) {
            diagnostics.append(ConfigDiagnostic(.warning, file: file, line: nil, "no pknock rules: the daemon will protect nothing"))
        }
        return Configuration(rules: rules, warnings: try split(diagnostics))
    }

    /// Throws the errors (in line order) when there are any; otherwise returns the warnings.
    private static func split(_ diagnostics: [ConfigDiagnostic]) throws(ConfigError) -> [ConfigDiagnostic] {
        let ordered = diagnostics.enumerated().sorted { ($0.element.line ?? 0, $0.offset) < ($1.element.line ?? 0, $1.offset) }.map(\.element)
        let errors = ordered.filter(\.isError)
        guard errors.isEmpty else { throw ConfigError(diagnostics: errors) }
        return ordered
    }

    private static func read(_ path: String) throws(ConfigError) -> String {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigError(ConfigDiagnostic(file: path, line: nil, "no such file"))
        }
        guard !isDirectory.boolValue else { throw ConfigError(ConfigDiagnostic(file: path, line: nil, "is a directory")) }
        guard manager.isReadableFile(atPath: path), let data = manager.contents(atPath: path) else {
            throw ConfigError(ConfigDiagnostic(file: path, line: nil, "cannot read the file: permission denied"))
        }
        // Not `String(data:encoding:)`: it drops a byte order mark, which would hide a second one.
        // (Decoding replaces invalid UTF-8, so valid text is exactly the bytes read.)
        let text = String(decoding: data, as: UTF8.self)
        guard text.utf8.elementsEqual(data) else {
            throw ConfigError(ConfigDiagnostic(file: path, line: nil, "the file is not valid UTF-8 text"))
        }
        return text
    }
}
