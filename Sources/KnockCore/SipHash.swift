/// The key of a ``SipHash``: 128 bits, as two little-endian words (key bytes 0–7 and 8–15).
public struct SipHashKey: Equatable, Sendable {
    /// Key bytes 0–7, read little-endian.
    public var k0: UInt64
    /// Key bytes 8–15, read little-endian.
    public var k1: UInt64

    /// Makes a key from its two words.
    public init(k0: UInt64, k1: UInt64) {
        self.k0 = k0
        self.k1 = k1
    }

    /// A key drawn from `generator`; production passes `SystemRandomNumberGenerator`.
    public init(using generator: inout some RandomNumberGenerator) {
        self.init(k0: generator.next(), k1: generator.next())
    }

    /// A fresh key from the system's random source: what a daemon keys its first-knock table with.
    public static func random() -> SipHashKey {
        var generator = SystemRandomNumberGenerator()
        return SipHashKey(using: &generator)
    }
}

/// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed hash short inputs cannot be aimed at without
/// the key.
///
/// Here it turns (rule, source address) into a first-knock fingerprint and table buckets,
/// so a flood cannot choose sources that collide. Not Swift's `Hasher`, whose output may change
/// between Swift versions and runs and is not meant for values kept in a table of our own.
///
/// Allocation-free; the 128-bit form is the reference's `siphash` with a 16-byte output.
public enum SipHash {
    /// SipHash-2-4 with a 64-bit result of `bytes`.
    public static func hash64(_ bytes: some Collection<UInt8>, key: SipHashKey) -> UInt64 {
        var state = State(key: key, wide: false)
        state.absorb(bytes)
        return state.finish64()
    }

    /// SipHash-2-4 with a 128-bit result of `bytes`: (output bytes 0–7, bytes 8–15), little-endian.
    public static func hash128(_ bytes: some Collection<UInt8>, key: SipHashKey) -> (UInt64, UInt64) {
        var state = State(key: key, wide: true)
        state.absorb(bytes)
        return state.finish128()
    }

    /// SipHash-2-4-128 of the 24 bytes `a`, `b`, `c` (each little-endian): the same result as
    /// ``hash128(_:key:)`` of those bytes, without a byte loop.
    ///
    /// The first-knock table's hot path.
    @inline(__always)
    public static func hash128(_ a: UInt64, _ b: UInt64, _ c: UInt64, key: SipHashKey) -> (UInt64, UInt64) {
        var state = State(key: key, wide: true)
        state.compress(a)
        state.compress(b)
        state.compress(c)
        state.compress(UInt64(24) << 56)
        return state.squeeze128()
    }

    private struct State {
        var v0: UInt64
        var v1: UInt64
        var v2: UInt64
        var v3: UInt64
        var pending: UInt64 = 0
        var length = 0

        init(key: SipHashKey, wide: Bool) {
            v0 = 0x736f_6d65_7073_6575 ^ key.k0
            v1 = 0x646f_7261_6e64_6f6d ^ key.k1 ^ (wide ? 0xee : 0)
            v2 = 0x6c79_6765_6e65_7261 ^ key.k0
            v3 = 0x7465_6462_7974_6573 ^ key.k1
        }

        @inline(__always)
        mutating func round() {
            v0 &+= v1; v1 = v1.rotatedLeft(13); v1 ^= v0; v0 = v0.rotatedLeft(32)
            v2 &+= v3; v3 = v3.rotatedLeft(16); v3 ^= v2
            v0 &+= v3; v3 = v3.rotatedLeft(21); v3 ^= v0
            v2 &+= v1; v1 = v1.rotatedLeft(17); v1 ^= v2; v2 = v2.rotatedLeft(32)
        }

        @inline(__always)
        mutating func compress(_ word: UInt64) {
            v3 ^= word
            round()
            round()
            v0 ^= word
        }

        mutating func absorb(_ bytes: some Collection<UInt8>) {
            for byte in bytes {
                pending |= UInt64(byte) << UInt64((length & 7) * 8)
                length += 1
                if length & 7 == 0 {
                    compress(pending)
                    pending = 0
                }
            }
        }

        mutating func finalBlock() {
            compress(pending | UInt64(truncatingIfNeeded: length) << 56)
        }

        mutating func finish64() -> UInt64 {
            finalBlock()
            v2 ^= 0xff
            round(); round(); round(); round()
            return v0 ^ v1 ^ v2 ^ v3
        }

        mutating func finish128() -> (UInt64, UInt64) {
            finalBlock()
            return squeeze128()
        }

        /// The finalization of the 128-bit form, once the last block is compressed.
        mutating func squeeze128() -> (UInt64, UInt64) {
            v2 ^= 0xee
            round(); round(); round(); round()
            let first = v0 ^ v1 ^ v2 ^ v3
            v1 ^= 0xdd
            round(); round(); round(); round()
            return (first, v0 ^ v1 ^ v2 ^ v3)
        }
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func rotatedLeft(_ count: UInt64) -> UInt64 { self << count | self >> (64 - count) }
}
