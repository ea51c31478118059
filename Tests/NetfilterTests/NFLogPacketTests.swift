import Netfilter
import Testing

@Suite struct NFLogPacketTests {
    @Test func etherTypesAreTheLinuxValues() {
        #expect(NFLogPacket.etherTypeIPv4 == 0x0800)  // ETH_P_IP
        #expect(NFLogPacket.etherTypeIPv6 == 0x86DD)  // ETH_P_IPV6
    }

    @Test func prefixDefaultsToNone() {
        let packet = NFLogPacket(payload: [0x45], hardwareProtocol: NFLogPacket.etherTypeIPv4)
        #expect(packet.prefix == nil)
        #expect(packet != NFLogPacket(payload: [0x45], hardwareProtocol: NFLogPacket.etherTypeIPv4, prefix: "k "))
    }
}
