#if canImport(Glibc)
    import CKnockPOSIX
    import Glibc
#endif

/// The daemon's settings for glibc's allocator (issue #14: memory given back, not kept resident).
///
/// By default glibc raises its mmap threshold each time a large mapped block is freed (up to
/// 32 MiB), so once a growing table has been reallocated, later big blocks come from the heap and
/// stay resident after they are freed. Fixing the threshold keeps every block of at least
/// ``largeAllocationThreshold`` bytes in a mapping of its own, returned to the kernel when freed;
/// one allocation arena instead of one per thread (pknockd's threads mostly wait) keeps idle
/// memory from being spread over several arenas.
public enum MemoryTuning {
    /// Blocks of at least this many bytes are mapped on their own (glibc's initial default).
    public static let largeAllocationThreshold: Int32 = 128 * 1024

    /// Applies the settings to this process; false where the C library has no such settings.
    ///
    /// The corresponding C function is `mallopt` (`M_MMAP_THRESHOLD`, `M_ARENA_MAX`).
    @discardableResult
    public static func apply() -> Bool {
        #if canImport(Glibc)
            CKnockPOSIX_tune_malloc(largeAllocationThreshold) == 1
        #else
            false
        #endif
    }

    /// How many blocks the allocator holds in mappings of their own now (glibc's `hblks`).
    ///
    /// Nil where unknown. For tests and diagnostics.
    public static var mappedBlocks: Int? {
        #if canImport(Glibc)
            let count = CKnockPOSIX_mapped_blocks()
            return count < 0 ? nil : count
        #else
            nil
        #endif
    }

    /// A mapping of /proc/self/smaps whose pages may be dropped: backed by a file, not writable,
    /// holding no private (copied-on-write) page.
    public struct ReleasableMapping: Equatable, Sendable {
        /// First address.
        public var start: UInt
        /// One past the last address.
        public var end: UInt

        /// Makes a mapping.
        public init(start: UInt, end: UInt) {
            self.start = start
            self.end = end
        }
    }

    /// The mappings of an smaps text that ``releaseStartupPages()`` may drop.
    ///
    /// Those are file-backed (the path starts with `/`, devices under /dev excepted), without `w`
    /// in the permissions, and `Anonymous: 0 kB`. Such pages are
    /// exactly the file's bytes, so dropping them loses nothing: a later access reads them again
    /// from the page cache. Mappings that were written (relocations, RELRO) have anonymous pages
    /// and are left alone.
    public static func releasableMappings(smaps: String) -> [ReleasableMapping] {
        var result: [ReleasableMapping] = []
        var candidate: ReleasableMapping?
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if fields.count >= 5, first.contains("-"), fields[3].contains(":") {
                // A mapping's header: "start-end perms offset dev inode [path]".
                candidate = nil
                let bounds = first.split(separator: "-")
                guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16), start < end,
                    !fields[1].contains("w"), fields.count >= 6, fields[5].hasPrefix("/"), !fields[5].hasPrefix("/dev/")
                else { continue }
                candidate = ReleasableMapping(start: start, end: end)
            } else if first == "Anonymous:", let mapping = candidate {
                if fields.count >= 2, fields[1] == "0" { result.append(mapping) }
                candidate = nil
            }
        }
        return result
    }

    /// Drops from this process's resident set the pages of its read-only file mappings.
    ///
    /// Those are program code and constants, its own and its libraries': what start-up alone touched leaves the
    /// resident set, and what later work needs comes back from the page cache on first use (a
    /// minor fault). Returns the bytes of the mappings released (0 where unsupported).
    ///
    /// The corresponding C function is `madvise(MADV_DONTNEED)`, applied only to
    /// ``releasableMappings(smaps:)``.
    @discardableResult
    public static func releaseStartupPages() -> Int {
        #if os(Linux)
            guard let smaps = readWholeFile("/proc/self/smaps") else { return 0 }
            var released = 0
            for mapping in releasableMappings(smaps: smaps) {
                let length = Int(mapping.end - mapping.start)
                if unsafe madvise(UnsafeMutableRawPointer(bitPattern: mapping.start), length, Int32(MADV_DONTNEED)) == 0 { released += length }
            }
            return released
        #else
            return 0
        #endif
    }

    private static func readWholeFile(_ path: String) -> String? {
        #if canImport(Glibc)
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { return nil }
            defer { close(descriptor) }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = unsafe chunk.withUnsafeMutableBytes { unsafe read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                bytes.append(contentsOf: chunk[0..<count])
            }
            return String(decoding: bytes, as: UTF8.self)
        #else
            return nil
        #endif
    }
}
