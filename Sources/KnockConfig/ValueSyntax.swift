import KnockCore

/// The small value syntaxes both config formats share: ports and durations.
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
        if let port = Port(text) { return .success(port) }
        if !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) {
            return .failure(Message("port \(text) is out of range (1 to 65535)"))
        }
        return .failure(Message("\"\(text)\" is not a port number (1 to 65535)"))
    }

    /// `2002`, `2002:tcp` or `2002:udp`; a bare number takes `defaultProtocol`.
    static func servicePort(_ text: String, defaultProtocol: TransportProtocol) -> Result<ServicePort, Message> {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        var transport = defaultProtocol
        if parts.count == 2 {
            guard let named = TransportProtocol(name: parts[1]) else {
                return .failure(Message("unknown protocol \"\(parts[1])\" in \"\(text)\" (tcp or udp)"))
            }
            transport = named
        }
        return port(parts[0]).map { ServicePort($0, transport) }
    }

    /// A duration from a bare integer in `unit`, or text `10s`, `2m`, `1h`, `1d`.
    static func duration(_ value: TOMLValue.Kind, bareUnit unit: BareUnit) -> Result<Duration, Message> {
        switch value {
        case .integer(let count):
            return scaled(count, by: unit.seconds, text: String(count))
        case .string(let text):
            return duration(text)
        default:
            return .failure(Message("expected a number or a duration such as \"90s\", \"30m\", \"2h\" or \"1d\""))
        }
    }

    /// A duration from text: a non-negative whole number followed by `s`, `m`, `h` or `d`.
    static func duration(_ text: String) -> Result<Duration, Message> {
        let bad = Message("invalid duration \"\(text)\": use a whole number with s, m, h or d, such as \"90s\" or \"2h\"")
        guard let unit = text.last, text.count >= 2 else { return .failure(bad) }
        let number = text.dropLast()
        guard number.allSatisfy({ $0.isASCII && $0.isNumber }), let count = Int64(number) else { return .failure(bad) }
        let seconds: Int64
        switch unit {
        case "s": seconds = 1
        case "m": seconds = 60
        case "h": seconds = 3600
        case "d": seconds = 86400
        default: return .failure(bad)
        }
        return scaled(count, by: seconds, text: text)
    }

    /// Durations are capped at ten years: anything longer is a typo, and it keeps nanoseconds in range.
    static let maximumDurationSeconds: Int64 = 10 * 366 * 86400

    private static func scaled(_ count: Int64, by unit: Int64, text: String) -> Result<Duration, Message> {
        guard count >= 0 else { return .failure(Message("the duration \(text) is negative")) }
        let (seconds, overflow) = count.multipliedReportingOverflow(by: unit)
        guard !overflow, seconds <= maximumDurationSeconds else {
            return .failure(Message("the duration \(text) is longer than ten years"))
        }
        return .success(.seconds(seconds))
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
