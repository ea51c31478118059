#!/usr/bin/env python3
"""Measures how long a watched table is missing: `repair.py TABLE RUNS COMMAND...`.

Subscribes to nf_tables notifications (the netlink group `nft monitor` reads), then RUNS times runs
COMMAND (which deletes or flushes TABLE) and times, as this observer sees it, the DELTABLE of
TABLE to the NEWTABLE that puts it back. Prints one line per run in ms and a summary
"repair p50 X ms p99 Y ms max Z ms (N runs)". Standard library only; run inside the namespace.
"""
import socket
import struct
import subprocess
import sys
import time

NETLINK_NETFILTER, SOL_NETLINK, ADD_MEMBERSHIP, NFTABLES_GROUP = 12, 270, 1, 7
NEWTABLE, DELTABLE = 0x0A00, 0x0A02


def table_events(data, table):
    """(type, monotonic time) of NEWTABLE/DELTABLE messages for `table` in one datagram."""
    offset = 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if length < 16:
            break
        if kind in (NEWTABLE, DELTABLE):
            attr = offset + 20
            while attr + 4 <= offset + length:
                alen, atype = struct.unpack_from("=HH", data, attr)
                if alen < 4:
                    break
                if atype & 0x3FFF == 1 and data[attr + 4:attr + alen].rstrip(b"\0") == table:
                    yield kind
                attr += (alen + 3) & ~3
        offset += (length + 3) & ~3


def main():
    table, runs, command = sys.argv[1].encode(), int(sys.argv[2]), sys.argv[3:]
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    sock.setsockopt(SOL_NETLINK, ADD_MEMBERSHIP, NFTABLES_GROUP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    results = []
    for _ in range(runs):
        # Started, not waited for: this process must be in recv() when the notifications come, so
        # each is timed as it arrives (not when nft has exited).
        nft = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deleted = None
        sock.settimeout(2.0)
        try:
            while True:
                data = sock.recv(1 << 16)
                now = time.monotonic()
                for kind in table_events(data, table):
                    if kind == DELTABLE and deleted is None:
                        deleted = now
                    elif kind == NEWTABLE and deleted is not None:
                        raise StopIteration
        except StopIteration:
            results.append((now - deleted) * 1000)
            print(f"{results[-1]:.2f}")
        except socket.timeout:
            print("no repair within 2 s")
        nft.wait()
        time.sleep(0.05)
    results.sort()
    if not results:
        print("repair: no run measured")
        return 1
    def pct(p):
        return results[min(len(results) - 1, int(round(p / 100 * (len(results) - 1))))]
    print(f"repair p50 {pct(50):.2f} ms p99 {pct(99):.2f} ms max {results[-1]:.2f} ms ({len(results)} of {runs} runs)")
    return 0 if len(results) == runs else 1


if __name__ == "__main__":
    sys.exit(main())
