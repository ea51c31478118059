import Glibc
import Netfilter
import Testing

/// Whether the root-only tests may run: only inside the private network namespace that
/// Scripts/test-system.sh makes, as root, with nftables usable and the ruleset empty.
enum SystemTestGate {
    /// The reason shown when the tests are skipped.
    static let skipReason: Comment = "needs root in the private netns of Scripts/test-system.sh"

    /// True when every condition holds; evaluated once.
    static let isOpen: Bool = {
        // 1. We are in the namespace the script made (so nothing here touches the host).
        guard let expected = Glibc.getenv("KNOCK_SYSTEM_TESTS_NETNS").map({ String(cString: $0) }),
            let actual = currentNetworkNamespaceInode(),
            expected == actual
        else { return false }
        // 2. Root, and nftables answers (no EPERM).
        guard geteuid() == 0, NFTContext.probe() == nil else { return false }
        // 3. Nobody else's ruleset is in the way.
        guard let ruleset = try? NFTContext().run("list ruleset") else { return false }
        return ruleset.allSatisfy(\.isWhitespace)
    }()

    /// The inode of this process's network namespace: NNN from `readlink /proc/self/ns/net` (`net:[NNN]`).
    static func currentNetworkNamespaceInode() -> String? {
        var buffer = [CChar](repeating: 0, count: 64)
        let count = readlink("/proc/self/ns/net", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        let link = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard link.hasPrefix("net:["), link.hasSuffix("]") else { return nil }
        return String(link.dropFirst(5).dropLast())
    }
}
