#!/usr/bin/env python3
"""Knock→open latency for Scripts/bench/run.sh and fleet.sh (run inside the client namespace).

  latency.py [--probe-host HOST2] [--interval-us N] [--give-up SECONDS] HOST RUNS PROTECTED KNOCK... [-- RESET_COMMAND...]

Each run sends the knock sequence as TCP SYNs (non-blocking connect, socket closed at once: one
SYN each), notes the time just after the last one left, then opens a fresh connection to the
protected port every 100 µs until one completes. The latency is from the last knock to that
connection being established (the protected port accepting). Then RESET_COMMAND (e.g. deleting
the grant from the set in the server namespace) runs, outside the measured time. Prints one
latency in microseconds per line, then "p50=… p90=… p99=… max=… runs=… failed=…".

With --probe-host the knocks go to HOST and the probes to HOST2 (fleet.sh: knock at gateway A,
connect at gateway B, so the latency covers A's etcd transaction and the watch reaching B);
--interval-us (default 100) and --give-up (default 1 s) set the prober's pace and patience.
"""
import os
import select
import socket
import subprocess
import sys
import time

PROBE_INTERVAL = 0.0001
GIVE_UP = 1.0


def syn(host, port):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect((host, port))
    except BlockingIOError:
        pass
    return s


def connected(s):
    try:
        s.getpeername()
        return True
    except OSError:
        return False


def one_run(knock_host, probe_host, protected, knocks, interval, give_up):
    for port in knocks:
        syn(knock_host, port).close()
    start = time.perf_counter()
    pending = []
    next_probe = start
    try:
        while True:
            now = time.perf_counter()
            if now - start > give_up:
                return None
            if now >= next_probe:
                pending.append(syn(probe_host, protected))
                next_probe = now + interval
                if len(pending) > 512:  # SYNs dropped silently: keep the open sockets bounded
                    pending.pop(0).close()
            _, writable, _ = select.select([], pending, [], 0.00002)
            for s in writable:
                # Reading SO_ERROR clears it: a probe refused with a reset (closed_port_response =
                # "reset") leaves the list at once, or the next select would see it writable with no
                # error and count it as connected. getpeername confirms the connection.
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 and connected(s):
                    return time.perf_counter() - start
                pending.remove(s)
                s.close()
    finally:
        for s in pending:
            s.close()


def main():
    args = sys.argv[1:]
    reset = []
    if "--" in args:
        at = args.index("--")
        args, reset = args[:at], args[at + 1:]
    probe_host, interval, give_up = None, PROBE_INTERVAL, GIVE_UP
    while args and args[0].startswith("--"):
        option, value, args = args[0], args[1], args[2:]
        if option == "--probe-host":
            probe_host = value
        elif option == "--interval-us":
            interval = int(value) / 1e6
        elif option == "--give-up":
            give_up = float(value)
        else:
            sys.exit(f"latency.py: unknown option {option}")
    host, runs, protected = args[0], int(args[1]), int(args[2])
    knocks = [int(p) for p in args[3:]]
    results, failed = [], 0
    for _ in range(runs):
        latency = one_run(host, probe_host or host, protected, knocks, interval, give_up)
        if latency is None:
            failed += 1
        else:
            results.append(latency * 1e6)
            print(f"{latency * 1e6:.0f}", flush=True)
        if reset:
            subprocess.run(reset, check=False)
        time.sleep(0.02)
    results.sort()

    def pct(p):
        return results[min(len(results) - 1, int(p / 100 * len(results)))] if results else float("nan")

    print(f"p50={pct(50):.0f} p90={pct(90):.0f} p99={pct(99):.0f} max={pct(100):.0f} runs={len(results)} failed={failed}")


if __name__ == "__main__":
    main()
