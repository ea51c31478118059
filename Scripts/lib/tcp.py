#!/usr/bin/env python3
"""Tiny TCP helpers for the namespace tests and the demo (standard library only).

  tcp.py serve PORT [PORT ...]      dual-stack echo server on each port (runs until killed)
  tcp.py probe HOST PORT [SECONDS]  exit 0 if a TCP connection completes in time, else 1
  tcp.py session HOST PORT GO DONE  connect, wait for file GO, send a line, expect it echoed,
                                    write DONE; exit 0 if the established session survived
  tcp.py stranger HOST PORT SECONDS a new connection attempt every 2 ms for SECONDS (each given
                                    100 ms); prints "attempts N connected M"; exit 0
  tcp.py udpserve PORT [PORT ...]   dual-stack UDP echo server on each port (runs until killed)
  tcp.py answer tcp|udp HOST PORT [SECONDS]
                                    print how the port answers: "refused" (TCP reset / ICMP port
                                    unreachable), "silent" (nothing in time) or "open"
  tcp.py unreachables HOST PORT COUNT
                                    send COUNT UDP datagrams at once and print how many ICMP
                                    port unreachables about them came back (needs root: raw socket)
"""
import os
import selectors
import socket
import sys
import time


def serve(ports):
    selector = selectors.DefaultSelector()
    for port in ports:
        listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        listener.bind(("::", port))
        listener.listen(64)
        listener.setblocking(False)
        selector.register(listener, selectors.EVENT_READ, "listener")
    while True:
        for key, _ in selector.select():
            if key.data == "listener":
                try:
                    conn, _ = key.fileobj.accept()
                except OSError:
                    continue
                conn.setblocking(False)
                selector.register(conn, selectors.EVENT_READ, "conn")
            else:
                try:
                    data = key.fileobj.recv(4096)
                except OSError:
                    data = b""
                if data:
                    try:
                        key.fileobj.send(data)
                    except OSError:
                        pass
                else:
                    selector.unregister(key.fileobj)
                    key.fileobj.close()


def probe(host, port, seconds):
    try:
        with socket.create_connection((host, port), timeout=seconds):
            return 0
    except OSError:
        return 1


def session(host, port, go, done):
    with socket.create_connection((host, port), timeout=2) as conn:
        deadline = time.time() + 60
        while not os.path.exists(go):
            if time.time() > deadline:
                return 1
            time.sleep(0.05)
        conn.settimeout(3)
        conn.sendall(b"still here\n")
        ok = conn.recv(64) == b"still here\n"
    with open(done, "w") as marker:
        marker.write("ok\n" if ok else "lost\n")
    return 0 if ok else 1


def stranger(host, port, seconds):
    """Probes without pause, so even a few milliseconds of open port are caught."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    selector = selectors.DefaultSelector()
    attempts = connected = 0
    started = time.monotonic()
    next_attempt = started
    pending = {}
    while True:
        now = time.monotonic()
        if now - started >= seconds and not pending:
            break
        if now >= next_attempt and now - started < seconds:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex((host, port))
            selector.register(sock, selectors.EVENT_WRITE)
            pending[sock] = now
            attempts += 1
            next_attempt = now + 0.002
        for key, _ in selector.select(timeout=0.001):
            sock = key.fileobj
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                connected += 1
            selector.unregister(sock)
            sock.close()
            del pending[sock]
        for sock, began in list(pending.items()):
            if time.monotonic() - began > 0.1:
                selector.unregister(sock)
                sock.close()
                del pending[sock]
    print(f"attempts {attempts} connected {connected}")
    return 0


def udpserve(ports):
    selector = selectors.DefaultSelector()
    for port in ports:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", port))
        selector.register(sock, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            try:
                data, peer = key.fileobj.recvfrom(4096)
                key.fileobj.sendto(data, peer)
            except OSError:
                pass


def answer(transport, host, port, seconds):
    """TCP: a connect (ECONNREFUSED on a reset). UDP: a connected socket's send and recv
    (ECONNREFUSED once an ICMP port unreachable arrived)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
    with socket.socket(family, kind) as sock:
        sock.settimeout(seconds)
        try:
            sock.connect((host, port))
            if kind == socket.SOCK_DGRAM:
                sock.send(b"probe\n")
                sock.recv(64)
            return "open"
        except ConnectionRefusedError:
            return "refused"
        except (socket.timeout, TimeoutError):
            return "silent"


def unreachables(host, port, count):
    """Counts ICMP(v6) port unreachables quoting a datagram to `port`, read from a raw socket."""
    v6 = ":" in host
    family = socket.AF_INET6 if v6 else socket.AF_INET
    raw = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    raw.setblocking(False)
    sender = socket.socket(family, socket.SOCK_DGRAM)
    for _ in range(count):
        sender.sendto(b"probe\n", (host, port))
    seen = 0
    deadline = time.time() + 0.5
    while time.time() < deadline:
        try:
            packet = raw.recv(2048)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        if v6:
            # ICMPv6 (no IP header on raw v6 sockets): type 1 code 4, then the quoted IPv6 + UDP header.
            if len(packet) >= 8 + 40 + 4 and packet[0] == 1 and packet[1] == 4 and packet[8 + 6] == 17:
                seen += int.from_bytes(packet[8 + 40 + 2:8 + 40 + 4], "big") == port
        else:
            ihl = (packet[0] & 15) * 4
            icmp = packet[ihl:]
            if len(icmp) >= 8 + 20 + 4 and icmp[0] == 3 and icmp[1] == 3 and icmp[8 + 9] == 17:
                inner = (icmp[8] & 15) * 4
                seen += int.from_bytes(icmp[8 + inner + 2:8 + inner + 4], "big") == port
    return seen


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "serve":
        serve([int(p) for p in args])
    elif command == "probe":
        sys.exit(probe(args[0], int(args[1]), float(args[2]) if len(args) > 2 else 1.0))
    elif command == "stranger":
        sys.exit(stranger(args[0], int(args[1]), float(args[2])))
    elif command == "session":
        sys.exit(session(args[0], int(args[1]), args[2], args[3]))
    elif command == "udpserve":
        udpserve([int(p) for p in args])
    elif command == "answer":
        print(answer(args[0], args[1], int(args[2]), float(args[3]) if len(args) > 3 else 1.0))
    elif command == "unreachables":
        print(unreachables(args[0], int(args[1]), int(args[2])))
    else:
        sys.exit(f"unknown command {command}")
