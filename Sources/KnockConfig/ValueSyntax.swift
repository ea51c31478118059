import KnockCore

/// The small value syntaxes both config formats share: ports and durations, from TOML values or text.
///
/// Text goes through the one parser per syntax in KnockCore (``Syntax``), which the client uses too.
///
/// Each parser returns the value or a message for an administrator (without file or line: the
/// caller knows those).
public enum ValueSyntax {
    /// The unit a bare integer duration is in: `time` counts seconds, `autoclose` minutes (as xt_pknock).
    enum BareUnit {
        case seconds
        case minutes

        var seconds: Int64 { self == .seconds ? 1 : 60 }
    }

    /// A port number from an integer: 1 through 65535.
    static func port(_ value: Int64) -> Result<Port, Message> {
        guard (1...65535).contains(value), let port = Port(rawValue: UInt16(value)) else {
            return .failure(Message("port \(value) is out of range (1 to 65535)"))
        }
        return .success(port)
    }

    /// A port number from decimal text: 1 through 65535.
    static func port(_ text: Substring) -> Result<Port, Message> {
        Syntax.port(text).mapError { Message($0.message) }
    }

    /// `2002`, `2002:tcp` or `2002:udp`; a bare number takes `defaultProtocol`.
    static func servicePort(_ text: String, defaultProtocol: TransportProtocol) -> Result<ServicePort, Message> {
        Syntax.knockPort(text).map { ServicePort($0.port, $0.transport ?? defaultProtocol) }.mapError { Message($0.message) }
    }

    /// A duration from a bare integer in `unit`, or text `10s`, `2m`, `1h`, `1d`.
    static func duration(_ value: TOMLValue.Kind, bareUnit unit: BareUnit) -> Result<Duration, Message> {
        switch value {
        case .integer(let count):
            return Syntax.duration(count: count, unitSeconds: unit.seconds, written: String(count)).mapError { Message($0.message) }
        case .string(let text):
            return duration(text)
        default:
            return .failure(Message("expected a number or a duration such as \"90s\", \"30m\", \"2h\" or \"1d\""))
        }
    }

    /// A duration from text: a non-negative whole number followed by `s`, `m`, `h` or `d` (a TOML
    /// string holds no bare number: that would be an integer).
    static func duration(_ text: String) -> Result<Duration, Message> {
        Syntax.duration(text).mapError { Message($0.message) }
    }

    /// A message for an administrator; an `Error` only so it can travel in a `Result`.
    struct Message: Error, Equatable {
        var text: String
        init(_ text: String) { self.text = text }
    }

    /// The closest of `candidates` to `key` when it is obviously a typo (edit distance ≤ 2), else nil.
    public static func suggestion(for key: String, among candidates: [String]) -> String? {
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(Array(key.lowercased().utf8), Array(candidate.utf8))
            if distance <= 2 && distance < (best?.distance ?? Int.max) { best = (candidate, distance) }
        }
        return best?.candidate
    }

    private static func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1]
            for (j, y) in b.enumerated() {
                current.append(Swift.min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }
}
