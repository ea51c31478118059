/// The small text syntaxes that the configuration, the client and the daemon share, with one
/// parser each: durations, knock ports, table names, and what a secret file holds.
///
/// Each parser returns the value or a ``Problem`` whose message names the text but not where it
/// came from (file, line, option): the caller adds that.
public enum Syntax {
    /// Why a piece of text was refused, in words for the person who wrote it.
    public struct Problem: Error, Equatable, Sendable, CustomStringConvertible {
        /// What is wrong.
        public var message: String
        /// Makes a problem.
        public init(_ message: String) { self.message = message }
        /// The message.
        public var description: String { message }
    }

    // MARK: Durations

    /// Durations are capped at ten years: anything longer is a typo, and it keeps nanoseconds in range.
    public static let maximumDurationSeconds: Int64 = 10 * 366 * 86400

    /// A duration from text: a whole number followed by `s`, `m`, `h` or `d`, such as `90s` or `2h`.
    ///
    /// When `bareUnitSeconds` is given, a bare whole number counts in that unit. Only ASCII digits
    /// (no sign, no spaces); zero to ten years.
    public static func duration(_ text: String, bareUnitSeconds: Int64? = nil) -> Result<Duration, Problem> {
        let advice = bareUnitSeconds == nil ? "use a whole number with s, m, h or d" : "use a whole number, optionally with s, m, h or d"
        let bad = Problem("invalid duration \"\(text)\": \(advice), such as \"90s\" or \"2h\"")
        guard let last = text.last else { return .failure(bad) }
        let unit: Int64
        let number: Substring
        switch last {
        case "s": (unit, number) = (1, text.dropLast())
        case "m": (unit, number) = (60, text.dropLast())
        case "h": (unit, number) = (3600, text.dropLast())
        case "d": (unit, number) = (86400, text.dropLast())
        default:
            guard let bareUnitSeconds else { return .failure(bad) }
            (unit, number) = (bareUnitSeconds, Substring(text))
        }
        guard !number.isEmpty, number.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let count = Int64(number) else {
            return .failure(bad)
        }
        return duration(count: count, unitSeconds: unit, written: text)
    }

    /// `count` units of `unitSeconds` as a duration; `written` is how the value appeared, for the message.
    public static func duration(count: Int64, unitSeconds: Int64, written: String) -> Result<Duration, Problem> {
        guard count >= 0 else { return .failure(Problem("the duration \(written) is negative")) }
        let (seconds, overflow) = count.multipliedReportingOverflow(by: unitSeconds)
        guard !overflow, seconds <= maximumDurationSeconds else {
            return .failure(Problem("the duration \(written) is longer than ten years"))
        }
        return .success(.seconds(seconds))
    }

    // MARK: Ports

    /// A port number from decimal text: 1 through 65535.
    public static func port(_ text: some StringProtocol) -> Result<Port, Problem> {
        if let port = Port(text) { return .success(port) }
        if !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            return .failure(Problem("port \(text) is out of range (1 to 65535)"))
        }
        return .failure(Problem("\"\(text)\" is not a port number (1 to 65535)"))
    }

    /// A knock port as written: `2002`, `2002:tcp` or `2002:udp` (the protocol in any case); the
    /// protocol is nil when none is written, for the caller's default.
    public static func knockPort(_ text: String) -> Result<(port: Port, transport: TransportProtocol?), Problem> {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        var transport: TransportProtocol?
        if parts.count == 2 {
            guard let named = TransportProtocol(name: parts[1]) else {
                return .failure(Problem("unknown protocol \"\(parts[1])\" in \"\(text)\" (tcp or udp)"))
            }
            transport = named
        }
        return port(parts.first ?? "").map { ($0, transport) }
    }

    // MARK: Table names

    /// The most bytes a table name may have.
    public static let maximumTableNameLength = 32

    /// Why `name` cannot be the nftables table's name, or nil when it can.
    ///
    /// nft takes the name unquoted, so it must be an nft identifier; we allow the safe subset: a
    /// letter or `_`, then letters, digits and `_`, at most 32 bytes. (nft also reports a syntax
    /// error for its keywords, such as `ip` or `tcp`, which this check does not list.)
    public static func tableNameProblem(_ name: String) -> String? {
        func isLetter(_ c: Unicode.Scalar) -> Bool { (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") }
        guard let first = name.unicodeScalars.first else { return "the table name is empty" }
        guard name.unicodeScalars.allSatisfy({ isLetter($0) || ($0 >= "0" && $0 <= "9") || $0 == "_" }) else {
            return "the table name may only contain letters, digits and '_'"
        }
        guard isLetter(first) || first == "_" else { return "the table name must start with a letter or '_'" }
        guard name.utf8.count <= maximumTableNameLength else {
            return "the table name is longer than \(maximumTableNameLength) characters"
        }
        return nil
    }

    // MARK: Secret files

    /// The secret in a secret file's `contents`: all of it, less one trailing `\n` or `\r\n` (so
    /// `echo secret > file` works, and a secret may hold any other byte, spaces included).
    public static func secret(fileContents contents: [UInt8]) -> [UInt8] {
        var bytes = contents[...]
        if bytes.last == UInt8(ascii: "\n") {
            bytes = bytes.dropLast()
            if bytes.last == UInt8(ascii: "\r") { bytes = bytes.dropLast() }
        }
        return Array(bytes)
    }

    /// The text of a key file from `pknock keygen` (one line of base64), without surrounding white space.
    ///
    /// The contents are read as UTF-8; the caller decodes the base64.
    public static func keyText(fileContents contents: [UInt8]) -> Substring {
        let text = String(decoding: contents, as: UTF8.self)[...]
        let isSpace: (Character) -> Bool = { $0.isWhitespace || $0.isNewline }
        guard let start = text.firstIndex(where: { !isSpace($0) }), let end = text.lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return text[start...end]
    }
}

extension Secret {
    /// The secret in a secret file's `contents` (see ``Syntax/secret(fileContents:)``).
    public init(fileContents contents: [UInt8]) {
        self.init(bytes: Syntax.secret(fileContents: contents))
    }
}
