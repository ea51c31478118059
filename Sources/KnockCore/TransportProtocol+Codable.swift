extension TransportProtocol: Codable {
    /// Reads the lowercase name, `tcp` or `udp`, as the control protocol writes it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        guard let transport = TransportProtocol(name: name) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not tcp or udp: \(name)")
        }
        self = transport
    }

    /// Writes the lowercase name, `tcp` or `udp`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
