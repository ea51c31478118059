#!/usr/bin/env python3
"""Tiny TCP helpers for the namespace tests and the demo (standard library only).

  tcp.py serve PORT [PORT ...]      dual-stack echo server on each port (runs until killed)
  tcp.py probe HOST PORT [SECONDS]  exit 0 if a TCP connection completes in time, else 1
  tcp.py session HOST PORT GO DONE  connect, wait for file GO, send a line, expect it echoed,
                                    write DONE; exit 0 if the established session survived
  tcp.py stranger HOST PORT SECONDS a new connection attempt every 2 ms for SECONDS (each given
                                    100 ms); prints "attempts N connected M"; exit 0
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
    else:
        sys.exit(f"unknown command {command}")
