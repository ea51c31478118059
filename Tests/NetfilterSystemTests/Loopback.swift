import Glibc

/// Sends UDP datagrams over the loopback interface of the test's network namespace.
enum Loopback {
    /// Sends `payload` from a fresh socket to `address` (an IPv4 or IPv6 literal) and `port`.
    static func sendUDP(to address: String, port: UInt16, payload: [UInt8], count: Int = 1) throws {
        if address.contains(":") {
            var target = sockaddr_in6()
            target.sin6_family = sa_family_t(AF_INET6)
            target.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, address, &target.sin6_addr) == 1 else { throw LoopbackError.badAddress(address) }
            try withUnsafeBytes(of: &target) { try send(family: AF_INET6, to: $0, payload: payload, count: count) }
        } else {
            var target = sockaddr_in()
            target.sin_family = sa_family_t(AF_INET)
            target.sin_port = port.bigEndian
            guard inet_pton(AF_INET, address, &target.sin_addr) == 1 else { throw LoopbackError.badAddress(address) }
            try withUnsafeBytes(of: &target) { try send(family: AF_INET, to: $0, payload: payload, count: count) }
        }
    }

    private static func send(family: Int32, to address: UnsafeRawBufferPointer, payload: [UInt8], count: Int) throws {
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw LoopbackError.system("socket", errno) }
        defer { Glibc.close(fd) }
        for _ in 0..<count {
            let sent = payload.withUnsafeBytes { bytes in
                sendto(
                    fd, bytes.baseAddress, bytes.count, 0,
                    address.baseAddress?.assumingMemoryBound(to: sockaddr.self), socklen_t(address.count)
                )
            }
            guard sent == payload.count else { throw LoopbackError.system("sendto", errno) }
        }
    }
}

enum LoopbackError: Error {
    case badAddress(String)
    case system(String, Int32)
}
