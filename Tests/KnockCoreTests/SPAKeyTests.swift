import KnockCore
import Testing

/// SPA vectors.
///
/// The expected MACs were computed outside this code base with Python's standard
/// library; the first row with:
///
///     python3 -c 'import hmac,hashlib,struct,ipaddress; print(hmac.new(b"foo",
///       ipaddress.ip_address("10.0.0.1").packed + struct.pack("<I", 29000000), hashlib.sha256).hexdigest())'
///
/// (md5 rows use `struct.pack("<Q", minute)` and `hashlib.md5`). The first two rows also appear in the
/// project's research notes on the xt_pknock wire format.
@Suite struct SPAKeyTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        var format: SPAFormat
        var secret: String
        var source: String
        var minute: Int64
        var mac: String
        var testDescription: String { "\(format) \(source) \(minute)" }
    }

    static let vectors: [Vector] = [
        Vector(
            format: .sha256, secret: "foo", source: "10.0.0.1", minute: 29_000_000,
            mac: "78109b6b9ef70f24ef830c115c9df962cfc0a400f18de6248014320f47f637c2"),
        Vector(
            format: .sha256, secret: "whatasecret", source: "11.10.0.1", minute: 29_123_456,
            mac: "69a8ed7f7b6b446346159e9d25a8684067b58f80bbb1f83d02e080836fd1b70a"),
        Vector(
            format: .sha256, secret: "opensecret", source: "192.0.2.7", minute: 29_300_000,
            mac: "faa77a7db21557500977ebfea220fa594a351fd18282648e8e4f22ebafd9c1a2"),
        Vector(
            format: .sha256, secret: "closesecret", source: "192.0.2.7", minute: 29_300_000,
            mac: "d214a25eba3daa1feefa67189e212edb48f5ab7233f314039d046f596eb023bb"),
        Vector(
            format: .sha256, secret: "opensecret", source: "2001:db8::7", minute: 29_300_000,
            mac: "eceb7b4834b0347605b3d27a3a476b93dc032ec5e4c490dd723e9a99bcace0c2"),
        Vector(
            format: .md5, secret: "qweasdzxc", source: "192.0.2.7", minute: 29_300_000,
            mac: "1844687d19a6983b888eec88fe37e29e"),
        Vector(
            format: .md5, secret: "qweasdzxc", source: "2001:db8::7", minute: 29_300_000,
            mac: "8f2ebc1bcf0b126034a2595ccb04db88"),
    ]

    @Test(arguments: vectors)
    func payloadMatchesIndependentVector(vector: Vector) {
        let key = SPAKey(format: vector.format, secret: Secret(vector.secret))
        let source = Fixture.address(vector.source)
        #expect(key.payload(source: source, epochMinute: vector.minute) == Array((vector.mac + "\n").utf8))
        #expect(key.verify(Array(vector.mac.utf8), source: source, epochMinute: vector.minute))
        #expect(key.verify(Array((vector.mac + "\0").utf8), source: source, epochMinute: vector.minute))
        #expect(key.verify(Array((vector.mac + "\n").utf8), source: source, epochMinute: vector.minute))
    }

    @Test(arguments: vectors)
    func rejectsEveryNearMiss(vector: Vector) {
        let key = SPAKey(format: vector.format, secret: Secret(vector.secret))
        let source = Fixture.address(vector.source)
        let mac = Array(vector.mac.utf8)
        #expect(!key.verify(mac, source: source, epochMinute: vector.minute + 1), "other minute")
        #expect(!key.verify(mac, source: Fixture.address("198.51.100.1"), epochMinute: vector.minute), "other source")
        #expect(
            !SPAKey(format: vector.format, secret: Secret(vector.secret + "x")).verify(
                mac, source: source, epochMinute: vector.minute), "other secret")
        #expect(!key.verify(Array(vector.mac.uppercased().utf8), source: source, epochMinute: vector.minute), "uppercase hex")
        #expect(!key.verify(mac.dropLast(), source: source, epochMinute: vector.minute), "short")
        #expect(!key.verify(mac + [10, 10], source: source, epochMinute: vector.minute), "two extra bytes")
        #expect(!key.verify([UInt8](), source: source, epochMinute: vector.minute), "empty")
        var flipped = mac
        flipped[flipped.count - 1] = flipped.last == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        #expect(!key.verify(flipped, source: source, epochMinute: vector.minute), "last digit changed")
    }

    @Test func bigEndianMinuteIsNotTheWireFormat() {
        // The same first vector with the minute big-endian (as a big-endian server would have computed it)
        // starts 40f0972f; our payload must not.
        let key = SPAKey(format: .sha256, secret: Secret("foo"))
        let payload = key.payload(source: Fixture.address("10.0.0.1"), epochMinute: 29_000_000)
        #expect(!payload.starts(with: Array("40f0972f".utf8)))
    }
}
