#!/usr/bin/env python3
"""Tiny TCP helpers for the namespace tests and the demo (standard library only).

  tcp.py serve PORT [PORT ...]      dual-stack echo server on each port (runs until killed)
  tcp.py probe HOST PORT [SECONDS]  exit 0 if a TCP connection completes in time, else 1
  tcp.py session HOST PORT GO DONE  connect, wait for file GO, send a line, expect it echoed,
                                    write DONE; exit 0 if the established session survived
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


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "serve":
        serve([int(p) for p in args])
    elif command == "probe":
        sys.exit(probe(args[0], int(args[1]), float(args[2]) if len(args) > 2 else 1.0))
    elif command == "session":
        sys.exit(session(args[0], int(args[1]), args[2], args[3]))
    else:
        sys.exit(f"unknown command {command}")
