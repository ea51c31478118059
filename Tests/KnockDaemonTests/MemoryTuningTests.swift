import KnockPOSIX
import Testing

/// Issue #14: pknockd's memory settings.
///
/// pknockd fixes glibc's mmap threshold and uses one arena, so a table's old storage goes back to
/// the kernel when the table grows, and drops start-up's code pages once it runs. The effect on resident memory is measured by
/// Scripts/bench/memory.sh (bytes per later-stage peer); here, that glibc takes both settings.
@Suite struct MemoryTuningTests {
    @Test func glibcAcceptsBothAllocatorSettings() throws {
        #expect(MemoryTuning.apply(), "mallopt refused M_MMAP_THRESHOLD or M_ARENA_MAX")
        // Whether a block is mapped on its own also depends on the free memory the test process's
        // heap already holds (a big enough free chunk is reused first), so only the count is read.
        let block = UnsafeMutableRawPointer.allocate(byteCount: 64 << 20, alignment: 16)
        defer { block.deallocate() }
        #expect(try #require(MemoryTuning.mappedBlocks) >= 0)
    }

    static let smaps = """
        55d0c0000000-55d0c1000000 r--p 00000000 fd:00 131 /usr/sbin/pknockd
        Size:              16384 kB
        Anonymous:             0 kB
        55d0c1000000-55d0c2000000 r-xp 01000000 fd:00 131 /usr/sbin/pknockd
        Rss:                9344 kB
        Anonymous:             0 kB
        55d0c2000000-55d0c2100000 r--p 02000000 fd:00 131 /usr/sbin/pknockd
        Anonymous:           744 kB
        55d0c2100000-55d0c2200000 rw-p 02100000 fd:00 131 /usr/sbin/pknockd
        Anonymous:           316 kB
        7f0000000000-7f0000100000 rw-p 00000000 00:00 0
        Anonymous:          1700 kB
        7f0000200000-7f0000201000 r--p 00000000 00:05 7 /dev/zero (deleted)
        Anonymous:             0 kB
        7ffc00000000-7ffc00001000 r-xp 00000000 00:00 0                          [vdso]
        Anonymous:             0 kB
        7f1000000000-7f1000200000 r-xp 00028000 fd:00 77 /usr/lib/x86_64-linux-gnu/libc.so.6
        Anonymous:             0 kB
        """

    /// Only read-only file mappings without a copied page are chosen: not the relocated RELRO
    /// part, not the writable data, not anonymous maps, devices or the vdso.
    @Test func onlyUnwrittenReadOnlyFileMappingsAreReleasable() {
        #expect(
            MemoryTuning.releasableMappings(smaps: Self.smaps) == [
                .init(start: 0x55d0_c000_0000, end: 0x55d0_c100_0000), .init(start: 0x55d0_c100_0000, end: 0x55d0_c200_0000),
                .init(start: 0x7f10_0000_0000, end: 0x7f10_0020_0000),
            ])
    }

    /// The release works on this (running) process, which goes on running the code it dropped.
    @Test func releasingTheStartupPagesKeepsTheProcessWorking() {
        #expect(MemoryTuning.releaseStartupPages() > 0)
        let again = MemoryTuning.releasableMappings(smaps: Self.smaps)
        #expect(again.count == 3)
    }
}
