#!/usr/bin/env python3
"""Start-up to ready: time from exec of `serve` to the first 200 from /readyz.

Usage: bench/startup.py [BINARY] [RUNS]. Measures a fresh SQLite database (created and migrated
on start) and an existing one, RUNS times each, and prints min / median / max in milliseconds.
Build the binary first: cargo build --release.
"""

import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(port: int) -> bool:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=0.2)
        c.request("GET", "/readyz")
        return c.getresponse().status == 200
    except OSError:
        return False


def once(binary: str, db_url: str) -> float:
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--no-https", "--database-url", db_url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not ready(port):
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}")
            if time.perf_counter() - started > 10:
                raise SystemExit("not ready after 10 s")
            time.sleep(0.001)
        return (time.perf_counter() - started) * 1000
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/intune-mtd-emulator"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    with tempfile.TemporaryDirectory() as tmp:
        fresh = [once(binary, f"sqlite://{tmp}/fresh-{i}/emulator.db") for i in range(runs)]
        existing_url = f"sqlite://{tmp}/existing/emulator.db"
        once(binary, existing_url)
        existing = [once(binary, existing_url) for _ in range(runs)]
    for name, xs in (("fresh database", fresh), ("existing database", existing)):
        print(f"{name:18} runs={runs} min={min(xs):.1f} ms median={statistics.median(xs):.1f} ms max={max(xs):.1f} ms")


if __name__ == "__main__":
    main()
