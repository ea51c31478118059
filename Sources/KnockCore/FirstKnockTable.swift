/// The memory of first knocks: "this source knocked port 1 of this rule, at about this time", for
/// every sequence rule, in one dense table of 16-byte entries.
///
/// A first knock costs nothing to send and can come from any spoofed source, so this is the table a
/// flood fills. It keeps no address: an entry is a keyed fingerprint of (rule, source) and a coarse
/// deadline, so millions fit in little memory and a legitimate first knock outlives its rule's `time`
/// under a flood at a sender's maximum rate (see Docs/man/pknock.toml.5, `first_knock_capacity`).
///
/// Layout: buckets of ``bucketSize`` entries; each (rule, source) may live in one of two buckets
/// chosen by SipHash-2-4 under a per-process random key (so nobody can aim sources at one bucket).
/// An entry whose deadline has passed is a free slot; when both buckets are full of live entries, the
/// one closest to its deadline is evicted (the oldest, for entries of one rule).
///
/// Entry (two words, 16 bytes, no other overhead):
/// - word 0: fingerprint tag (56 bits, never 0: 0 marks a free slot) | wrong knocks so far (8 bits);
/// - word 1: deadline in ticks of 2⁻²⁰ s ≈ 1.05 ms (40 bits, wraps after 36 years) | retransmission
///   fingerprint of the knock (24 bits: TCP source port and sequence number, or UDP source port and
///   payload).
///
/// A lookup compares the 56-bit tag with the 16 entries of its two buckets, whose placement came from
/// other hash bits, so a source that never knocked matches someone else's entry with probability at
/// most 16 × 2⁻⁵⁶ ≈ 2.2 × 10⁻¹⁶.
///
/// Storage is taken in chunks of 512 buckets (64 KiB) the first time an entry in the chunk is
/// written; an untouched chunk reads as all free. Idle, the table costs a pointer per chunk; a flood
/// grows it to `capacity` × 16 bytes and no further. Allocation happens at most once per chunk over
/// the table's life, never per knock afterwards.
///
/// Empty on init. Not safe for concurrent use; owned by ``KnockEngine``.
public struct FirstKnockTable {
    /// One slot: see the type's documentation for the bit layout.
    struct Entry: Equatable {
        var word0: UInt64 = 0
        var word1: UInt64 = 0
    }

    /// What a slot says, decoded.
    public struct Attempt: Equatable, Sendable {
        /// Where it is, for ``update(_:wrongKnocks:)`` and ``remove(_:)``.
        public var slot: Int
        /// Its deadline in ticks.
        public var deadline: Int64
        /// Wrong knocks counted against this attempt.
        public var wrongKnocks: UInt8
        /// The retransmission fingerprint of the knock (24 bits; 0: none).
        public var retransmission: UInt32
        /// Whether the deadline has passed.
        public var lapsed: Bool
    }

    /// Entries per bucket: 8 × 16 bytes is two cache lines.
    public static let bucketSize = 8
    /// Buckets per storage chunk: 512 × 8 × 16 bytes = 64 KiB.
    public static let bucketsPerChunk = 512
    static let entriesPerChunk = bucketSize * bucketsPerChunk
    /// The default capacity: 5 × 2²⁰ = 5,242,880 entries, 80 MiB when full.
    ///
    /// At 250,000 spoofed first
    /// knocks a second and a 10 s `time`, 2.5M entries are live (48 % of the slots), and a simulation of
    /// this insert policy (50M inserts) evicted none; at 300,000/s, 2 in 12M, none younger than 9.8 s.
    public static let defaultCapacity = 5_242_880
    /// The capacities a table may be made with (up to 2³² entries, 64 GiB).
    public static let capacityRange = 1...(1 << 32)

    /// The capacity of a table made with `requested`: whole buckets.
    public static func capacity(forRequested requested: Int) -> Int {
        (requested + bucketSize - 1) / bucketSize * bucketSize
    }

    /// Bits of a deadline: ticks of 2⁻²⁰ s (about 1.05 ms).
    public static let tickShift: Int64 = 20
    /// Entries of a rule without `time` get a deadline this many ticks ahead (2³⁸ ticks, 9 years).
    public static let unlimitedTicks: Int64 = 1 << 38
    private static let deadlineBits: UInt64 = 40
    private static let deadlineMask: UInt64 = (1 << 40) - 1
    /// Mask of a retransmission fingerprint.
    public static let retransmissionMask: UInt32 = (1 << 24) - 1

    /// How many entries fit.
    public let capacity: Int
    /// How many buckets there are.
    public let bucketCount: Int
    /// The fingerprint key.
    public let key: SipHashKey
    /// The entries, in chunks; shared between copies until one of them writes.
    private var chunks: [UnsafeMutablePointer<Entry>?]
    /// Owns the chunks (frees them); shared between copies of the table until one of them writes.
    private var owner: Owner
    /// Slots holding an entry, lapsed or not (a lapsed one is reused in place).
    public private(set) var occupied = 0
    /// Live entries evicted to make room since the table was made.
    public private(set) var evictions = 0

    /// Makes an empty table of at least `capacity` entries (rounded up to whole buckets).
    public init(capacity: Int, key: SipHashKey) {
        precondition(Self.capacityRange.contains(capacity), "first-knock table capacity out of range")
        bucketCount = (capacity + Self.bucketSize - 1) / Self.bucketSize
        self.capacity = bucketCount * Self.bucketSize
        self.key = key
        chunks = Array(repeating: nil, count: (bucketCount + Self.bucketsPerChunk - 1) / Self.bucketsPerChunk)
        owner = Owner()
    }

    /// Bytes of entry storage in use now (chunks written so far).
    public var residentBytes: Int {
        owner.allocated.count * Self.entriesPerChunk * MemoryLayout<Entry>.stride
    }

    /// The tick of `instant`.
    @inline(__always)
    public static func ticks(_ instant: Instant) -> Int64 { instant.nanoseconds >> tickShift }

    /// The length of `duration` in ticks, rounded up.
    public static func ticks(_ duration: Duration) -> Int64 {
        let nanoseconds = duration.nanosecondsClamped
        guard nanoseconds > 0 else { return 0 }
        return Swift.min((nanoseconds - 1) >> tickShift + 1, unlimitedTicks)
    }

    /// Where (rule, source) may live and its tag: computed once per knock, used for the lookup and
    /// the insert that may follow.
    public struct Place: Equatable, Sendable {
        var first: Int
        var second: Int
        var tag: UInt64

        /// One bucket when both choices fell on the same one, else two.
        var choices: Int { first == second ? 1 : 2 }

        func bucket(_ choice: Int) -> Int { choice == 0 ? first : second }
    }

    /// The place of (rule, source).
    @inline(__always)
    public func place(rule: UInt64, source: PeerAddress) -> Place {
        let (h0, h1) = SipHash.hash128(rule, source.high, source.low, key: key)
        var tag = h0 >> 8
        if tag == 0 { tag = 1 }
        let buckets = UInt64(bucketCount)
        let first = Int(((h1 & 0xFFFF_FFFF) &* buckets) >> 32)
        let second = Int(((h1 >> 32) &* buckets) >> 32)
        return Place(first: first, second: second, tag: tag)
    }

    @inline(__always)
    private func entry(at slot: Int) -> Entry {
        let chunk = slot / Self.entriesPerChunk
        guard let entries = chunks[chunk] else { return Entry() }
        return entries[slot - chunk * Self.entriesPerChunk]
    }

    @inline(__always)
    private mutating func store(_ value: Entry, at slot: Int) {
        let chunk = slot / Self.entriesPerChunk
        if !isKnownUniquelyReferenced(&owner) { copyChunks() }
        let entries: UnsafeMutablePointer<Entry>
        if let existing = chunks[chunk] {
            entries = existing
        } else {
            entries = owner.allocateChunk()
            chunks[chunk] = entries
        }
        entries[slot - chunk * Self.entriesPerChunk] = value
    }

    /// Gives this table chunks of its own (a copy shared them until now).
    private mutating func copyChunks() {
        let copy = Owner()
        for index in chunks.indices {
            guard let entries = chunks[index] else { continue }
            let mine = copy.allocateChunk()
            mine.update(from: entries, count: Self.entriesPerChunk)
            chunks[index] = mine
        }
        owner = copy
    }

    /// Signed distance from `now` to `deadline`, both in ticks, modulo 2⁴⁰.
    @inline(__always)
    private static func remaining(_ deadline: UInt64, now: Int64) -> Int64 {
        Int64(bitPattern: ((deadline &- UInt64(bitPattern: now)) & deadlineMask) << 24) >> 24
    }

    /// The entry of (rule, source), if any, lapsed or not.
    public func find(rule: UInt64, source: PeerAddress, now: Instant) -> Attempt? {
        find(place(rule: rule, source: source), now: now)
    }

    /// The entries of `bucket`, or nil while its chunk was never written (every slot free).
    @inline(__always)
    private func entries(ofBucket bucket: Int) -> UnsafeMutablePointer<Entry>? {
        let chunk = bucket / Self.bucketsPerChunk
        guard let entries = chunks[chunk] else { return nil }
        return entries + (bucket - chunk * Self.bucketsPerChunk) * Self.bucketSize
    }

    /// The entry at `place`, if any, lapsed or not.
    ///
    /// The two buckets are scanned side by side, so their memory is fetched at once: during a flood
    /// nearly every lookup finds nothing, and a table of megabytes is not in the cache.
    public func find(_ place: Place, now: Instant) -> Attempt? {
        let first = entries(ofBucket: place.first)
        let second = place.choices == 2 ? entries(ofBucket: place.second) : nil
        for index in 0..<Self.bucketSize {
            if let first, first[index].word0 >> 8 == place.tag {
                return attempt(first[index], slot: place.first * Self.bucketSize + index, now: now)
            }
            if let second, second[index].word0 >> 8 == place.tag {
                return attempt(second[index], slot: place.second * Self.bucketSize + index, now: now)
            }
        }
        return nil
    }

    private func attempt(_ value: Entry, slot: Int, now: Instant) -> Attempt {
        let nowTicks = Self.ticks(now)
        let remaining = Self.remaining(value.word1 >> 24, now: nowTicks)
        return Attempt(
            slot: slot, deadline: nowTicks + remaining, wrongKnocks: UInt8(truncatingIfNeeded: value.word0),
            retransmission: UInt32(truncatingIfNeeded: value.word1) & Self.retransmissionMask, lapsed: remaining < 0)
    }

    /// Remembers a first knock of (rule, source) until `deadline` (ticks), replacing its entry if it
    /// has one.
    ///
    /// Takes a free or lapsed slot of its two buckets, else evicts the live entry closest to
    /// its deadline; returns whether a live entry was evicted.
    @discardableResult
    public mutating func insert(rule: UInt64, source: PeerAddress, deadline: Int64, retransmission: UInt32, now: Instant) -> Bool {
        insert(place(rule: rule, source: source), deadline: deadline, retransmission: retransmission, now: now)
    }

    /// ``insert(rule:source:deadline:retransmission:now:)`` at a place already computed.
    @discardableResult
    public mutating func insert(_ place: Place, deadline: Int64, retransmission: UInt32, now: Instant) -> Bool {
        let nowTicks = Self.ticks(now)
        let value = Entry(
            word0: place.tag << 8,
            word1: (UInt64(bitPattern: deadline) & Self.deadlineMask) << 24 | UInt64(retransmission & Self.retransmissionMask))
        // Two choices: the bucket with more free slots (empty, or lapsed) takes the entry, which keeps
        // buckets evenly loaded. When neither has one, the live entry closest to its deadline goes.
        var target = -1
        var targetFree = 0
        var targetEmpty = false
        var victim = -1
        var victimRemaining = Int64.max
        for choice in 0..<place.choices {
            let base = place.bucket(choice) * Self.bucketSize
            var free = 0
            var freeSlot = -1
            var freeSlotEmpty = false
            for slot in base..<(base + Self.bucketSize) {
                let current = entry(at: slot)
                if current.word0 == 0 {
                    free += 1
                    if !freeSlotEmpty { (freeSlot, freeSlotEmpty) = (slot, true) }
                    continue
                }
                if current.word0 >> 8 == place.tag {
                    store(value, at: slot)
                    return false
                }
                let remaining = Self.remaining(current.word1 >> 24, now: nowTicks)
                if remaining < 0 {
                    free += 1
                    if freeSlot < 0 { freeSlot = slot }
                } else if remaining < victimRemaining {
                    (victim, victimRemaining) = (slot, remaining)
                }
            }
            if free > targetFree { (target, targetFree, targetEmpty) = (freeSlot, free, freeSlotEmpty) }
        }
        let evicted = target < 0
        if evicted {
            target = victim
            evictions += 1
        } else if targetEmpty {
            occupied += 1
        }
        store(value, at: target)
        return evicted
    }

    /// Sets the wrong-knock count of the entry at `slot`.
    public mutating func update(_ slot: Int, wrongKnocks: UInt8) {
        var value = entry(at: slot)
        guard value.word0 != 0 else { return }
        value.word0 = value.word0 & ~0xFF | UInt64(wrongKnocks)
        store(value, at: slot)
    }

    /// Frees the entry at `slot`.
    public mutating func remove(_ slot: Int) {
        guard entry(at: slot).word0 != 0 else { return }
        occupied -= 1
        store(Entry(), at: slot)
    }

    /// How many entries are live at `now` (a scan of the table: for status and tests, not per knock).
    public func liveCount(at now: Instant) -> Int {
        let nowTicks = Self.ticks(now)
        var live = 0
        for case let entries? in chunks {
            for index in 0..<Self.entriesPerChunk
            where entries[index].word0 != 0 && Self.remaining(entries[index].word1 >> 24, now: nowTicks) >= 0 {
                live += 1
            }
        }
        return live
    }
}

extension FirstKnockTable {
    /// Allocates chunks (zeroed: every slot free) and frees them when the last table sharing them
    /// goes.
    ///
    /// A chunk is allocated the first time an entry in it is written.
    final class Owner {
        private(set) var allocated: [UnsafeMutablePointer<Entry>] = []

        /// A bucket's size, so that no bucket straddles more than its two cache lines.
        static let alignment = FirstKnockTable.bucketSize * MemoryLayout<Entry>.stride

        func allocateChunk() -> UnsafeMutablePointer<Entry> {
            let bytes = UnsafeMutableRawPointer.allocate(
                byteCount: FirstKnockTable.entriesPerChunk * MemoryLayout<Entry>.stride, alignment: Self.alignment)
            let entries = bytes.initializeMemory(as: Entry.self, repeating: Entry(), count: FirstKnockTable.entriesPerChunk)
            allocated.append(entries)
            return entries
        }

        deinit {
            for entries in allocated { UnsafeMutableRawPointer(entries).deallocate() }
        }
    }
}
