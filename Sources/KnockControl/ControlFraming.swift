// FoundationEssentials where there is one (JSON coding needs no ICU), else Foundation (Darwin).
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The control socket's framing (Docs/control-protocol.md): JSON lines.
///
/// One object per line in each direction, UTF-8, `\n`-terminated; a trailing `\r` is ignored.
/// Keys are snake_case, sorted, and absent values are left out.
public enum ControlFraming {
    /// The longest request line the daemon reads; longer lines get an error reply and the connection closes.
    public static let maximumRequestLength = 4096
    /// The longest reply line the client reads (a status reply lists every tracked peer).
    public static let maximumReplyLength = 64 << 20
    /// The longest event line the client reads.
    public static let maximumEventLength = 1 << 20

    /// `value` as one JSON line, without the newline.
    public static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding our own plain values cannot fail.
        guard let data = try? encoder.encode(value) else { return #"{"error":"internal encoding error","ok":false}"# }
        return String(decoding: data, as: UTF8.self)
    }

    /// Decodes one line (without its newline; a trailing `\r` is ignored); nil when it is not a `T`.
    public static func decode<T: Decodable>(_ type: T.Type, from line: some Collection<UInt8>) -> T? {
        var bytes = Array(line)
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try? decoder.decode(type, from: Data(bytes))
    }

    /// Whether `line` holds nothing but spaces and tabs (and a trailing `\r`): the server skips such lines.
    public static func isBlank(_ line: some Collection<UInt8>) -> Bool {
        var bytes = Array(line)
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        return bytes.allSatisfy { $0 == 0x20 || $0 == 0x09 }
    }
}
