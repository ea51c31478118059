#!/usr/bin/env python3
"""Sends malformed knock packets, every kind we know of, for the attack scenarios (run inside a
client namespace; needs CAP_NET_RAW).

  malformed.py IFACE DST_MAC SRC_IP4 DST_IP4 SRC_IP6 DST_IP6

Frames are built whole and sent through an AF_PACKET socket, so nothing on the sending side fixes
them up. Some the receiving kernel drops itself (bad IPv4 header length, IPv4-mapped IPv6 source);
the rest reach the knock rules, NFLOG and pknockd's parser: bad TCP data offsets, truncated
headers, UDP lengths that lie, IPv4 options, fragments, long IPv6 extension-header chains, SPA
payloads of every wrong shape. Prints how many frames it sent.
"""
import socket
import struct
import sys


def csum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(src, dst, proto, l4, options=b"", frag=0, total=None, ihl=None):
    ihl = ihl if ihl is not None else 5 + len(options) // 4
    total = total if total is not None else 20 + len(options) + len(l4)
    header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 7, frag, 64, proto, 0, src, dst) + options
    header = header[:10] + struct.pack("!H", csum(header)) + header[12:]
    return header + l4


def ipv6(src, dst, next_header, rest, length=None):
    return struct.pack("!IHBB16s16s", 0x60000000, len(rest) if length is None else length, next_header, 64, src, dst) + rest


def tcp(dport, flags=0x02, offset=5, extra=b""):
    return struct.pack("!HHIIBBHHH", 40001, dport, 1, 0, offset << 4, flags, 65535, 0, 0) + extra


def udp(dport, payload=b"", length=None):
    return struct.pack("!HHHH", 40002, dport, 8 + len(payload) if length is None else length, 0) + payload


def main():
    iface, dst_mac, src4, dst4, src6, dst6 = sys.argv[1:7]
    s4, d4 = socket.inet_aton(src4), socket.inet_aton(dst4)
    s6, d6 = socket.inet_pton(socket.AF_INET6, src6), socket.inet_pton(socket.AF_INET6, dst6)
    mapped = socket.inet_pton(socket.AF_INET6, "::ffff:" + src4)
    spa_like = [b"", b"x", b"0" * 64, b"g" * 65, b"\xff" * 65, b"A" * 64 + b"\n", b"0" * 66, b"0" * 33, b"\0" * 512]
    v4 = [
        tcp(2002, offset=0), tcp(2002, offset=2), tcp(2002, offset=15), tcp(2002)[:10],
        tcp(2002, flags=0x03), tcp(2002, flags=0x06), tcp(2002, flags=0xFF),
    ]
    frames = [ipv4(s4, d4, 6, segment) for segment in v4]
    frames += [ipv4(s4, d4, 17, udp(4000, payload)) for payload in spa_like]
    frames += [
        ipv4(s4, d4, 17, udp(4000, b"0" * 65, length=3)),
        ipv4(s4, d4, 17, udp(4000, b"0" * 65, length=65535)),
        ipv4(s4, d4, 17, udp(4000)[:5]),
        ipv4(s4, d4, 6, tcp(2002), options=b"\x44\x0c\x05\x00" + b"\x01" * 36),  # timestamp option
        ipv4(s4, d4, 6, tcp(2002), total=1500),                                 # total length lies
        ipv4(s4, d4, 6, tcp(2002), ihl=3),                                      # kernel drops
        ipv4(s4, d4, 17, udp(4000, b"0" * 40), frag=0x2000),                    # first fragment, rest never comes
        ipv4(s4, d4, 17, b"0" * 30, frag=0x0004),                               # a later fragment alone
        ipv4(s4, d4, 253, b"experimental"),
        ipv4(s4, d4, 6, b""),
    ]
    hop = lambda nh: bytes([nh, 0, 1, 4, 0, 0, 0, 0])
    chain = b"".join(hop(60) for _ in range(19)) + hop(17)
    frames6 = [
        ipv6(s6, d6, 6, tcp(2002, offset=1)),
        ipv6(s6, d6, 0, hop(60) + hop(17) + udp(4000, b"0" * 65)),
        ipv6(s6, d6, 0, hop(60)[:1] + chain + udp(4000, b"1" * 65)),   # 20 extension headers
        ipv6(s6, d6, 60, chain + udp(4000, b"z" * 64)),
        ipv6(s6, d6, 44, bytes([17, 0, 0, 1, 0, 0, 0, 9]) + udp(4000, b"0" * 65)),  # fragment, first of many
        ipv6(s6, d6, 44, bytes([17, 0, 0, 0x10, 0, 0, 0, 9]) + b"0" * 24),          # a later fragment alone
        ipv6(s6, d6, 17, udp(4000, b"0" * 65), length=4),                           # payload length lies
        ipv6(s6, d6, 17, udp(4000, b"0" * 65), length=9000),
        ipv6(mapped, d6, 6, tcp(2002)),                                             # kernel drops
        ipv6(s6, d6, 59, b""),
    ]
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((iface, 0))
    mac = bytes.fromhex(dst_mac.replace(":", ""))
    own = open(f"/sys/class/net/{iface}/address").read().strip()
    src_mac = bytes.fromhex(own.replace(":", ""))
    sent = 0
    for frame in frames:
        sock.send(mac + src_mac + b"\x08\x00" + frame)
        sent += 1
    for frame in frames6:
        sock.send(mac + src_mac + b"\x86\xdd" + frame)
        sent += 1
    print(f"sent {sent} malformed frames")


if __name__ == "__main__":
    main()
