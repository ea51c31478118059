#!/usr/bin/env python3
"""Fleet knock→open latency for Scripts/bench/fleet.sh (run inside the fleet's client namespace).

  fleet_latency.py KNOCK_HOST PROBE_HOST RUNS PROTECTED KNOCK... [-- RESET_COMMAND...]

Each run sends the knock sequence to KNOCK_HOST (gateway A) as TCP SYNs (non-blocking connect,
socket closed at once: one SYN each), notes the time just after the last one left, then opens a
fresh connection to PROTECTED at PROBE_HOST (gateway B) every 200 µs until one completes: the
latency covers A's etcd transaction, the watch event reaching B and B's kernel update. Then
RESET_COMMAND (closing the grant fleet-wide and waiting until B has dropped it) runs, outside the
measured time. Prints one latency in microseconds per line, then
"p50=… p90=… p99=… max=… runs=… failed=…" (microseconds).
"""
import select
import socket
import subprocess
import sys
import time

PROBE_INTERVAL = 0.0002
GIVE_UP = 3.0


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


def one_run(knock_host, probe_host, protected, knocks):
    for port in knocks:
        syn(knock_host, port).close()
    start = time.perf_counter()
    pending = []
    next_probe = start
    try:
        while True:
            now = time.perf_counter()
            if now - start > GIVE_UP:
                return None
            if now >= next_probe:
                pending.append(syn(probe_host, protected))
                next_probe = now + PROBE_INTERVAL
                if len(pending) > 512:       # silently dropped SYNs: keep the open sockets bounded
                    pending.pop(0).close()
            _, writable, _ = select.select([], pending, [], 0.00005)
            for s in writable:
                # Reading SO_ERROR clears it: a refused probe (the gateway answers a closed port with a
                # reset) must leave the list at once, or the next select sees it writable with no error.
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
    knock_host, probe_host, runs, protected = args[0], args[1], int(args[2]), int(args[3])
    knocks = [int(p) for p in args[4:]]
    results, failed = [], 0
    for _ in range(runs):
        latency = one_run(knock_host, probe_host, protected, knocks)
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
