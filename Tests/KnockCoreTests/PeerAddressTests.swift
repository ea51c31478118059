import KnockCore
import Testing

@Suite struct PeerAddressTests {
    @Test(arguments: [
        ("192.0.2.1", "192.0.2.1", true),
        ("0.0.0.0", "0.0.0.0", true),
        ("255.255.255.255", "255.255.255.255", true),
        ("2001:db8::1", "2001:db8::1", false),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1", false),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1", false),
        ("::", "::", false),
        ("::1", "::1", false),
        ("2001:db8::", "2001:db8::", false),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6", false),
        ("::ffff:192.0.2.5", "192.0.2.5", true),
        ("64:ff9b::192.0.2.5", "64:ff9b::c000:205", false),
    ])
    func parsesAndFormats(input: String, expected: String, isIPv4: Bool) throws {
        let address = try #require(PeerAddress(input))
        #expect(address.description == expected)
        #expect(address.isIPv4 == isIPv4)
        #expect(PeerAddress(address.description) == address)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.-4", "a.b.c.d", "1:2:3:4:5:6:7:8:9", "1::2::3",
        "12345::", "2001:db8::g", ":1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8::", "::ffff:1.2.3", " 1.2.3.4",
    ])
    func rejectsMalformed(input: String) {
        #expect(PeerAddress(input) == nil)
    }

    @Test func networkBytesAreFourOrSixteen() throws {
        #expect(try #require(PeerAddress("192.0.2.7")).networkBytes == [192, 0, 2, 7])
        #expect(
            try #require(PeerAddress("2001:db8::7")).networkBytes
                == [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7])
        #expect(PeerAddress(bytes: [192, 0, 2, 7]) == PeerAddress("192.0.2.7"))
        #expect(PeerAddress(bytes: [1, 2, 3]) == nil)
    }
}
