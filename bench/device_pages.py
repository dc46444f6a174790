#!/usr/bin/env python3
"""Filtered pages of managed devices in a large tenant, on PostgreSQL.

Usage: bench/device_pages.py [DEVICES] [BINARY]   (defaults: 100000, target/release/intune-mtd-emulator)

Creates a scratch database on the local PostgreSQL (MTD_EMULATOR_BENCH_POSTGRES_URL, default
postgres://postgres@127.0.0.1:5432/postgres), starts the server on it, enrolls DEVICES devices
through the control plane (a fifth of them iOS), then walks every page of
`GET /v1.0/deviceManagement/managedDevices?$filter=operatingSystem eq 'iOS'&$top=1000` and
reports each page's latency, and prints PostgreSQL's plan of the page query and of the count
query the server runs (the same SQL as `list_tenant_rows` builds). The database is dropped at
the end.
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid

ADMIN = os.environ.get("MTD_EMULATOR_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def psql(db_url: str, sql: str) -> str:
    return subprocess.run(["psql", db_url, "-X", "-q", "-t", "-A", "-c", sql], check=True, capture_output=True, text=True).stdout


def call(method: str, url: str, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")


def main() -> None:
    devices = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    binary = sys.argv[2] if len(sys.argv) > 2 else "target/release/intune-mtd-emulator"
    name = f"mtd_bench_{int(time.time())}"
    psql(ADMIN, f'CREATE DATABASE "{name}"')
    db_url = ADMIN.rsplit("/", 1)[0] + "/" + name
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--no-https", "--database-url", db_url, "--log-filter", "warn"])
    try:
        for _ in range(200):
            try:
                call("GET", f"{base}/readyz")
                break
            except OSError:
                time.sleep(0.05)
        tenant = call("POST", f"{base}/_emulator/tenants", {})
        systems = ["iOS", "Android", "Windows", "iPadOS", "macOS"]
        started = time.perf_counter()
        for start in range(0, devices, 1000):
            batch = [
                {"deviceName": f"device-{i:06}", "operatingSystem": systems[i % 5], "osVersion": "17.0"}
                for i in range(start, min(start + 1000, devices))
            ]
            call("POST", f"{base}/_emulator/tenants/{tenant['id']}/devices", batch)
        enrolled = time.perf_counter() - started
        print(f"enrolled {devices} devices in {enrolled:.1f} s ({devices / enrolled:.0f} devices/s, batches of 1000)")
        # Steady state: autovacuum would have set the visibility map after a bulk load.
        psql(db_url, "VACUUM ANALYZE")
        form = urllib.parse.urlencode({
            "grant_type": "client_credentials",
            "client_id": tenant["bootstrapApp"]["clientId"],
            "client_secret": tenant["bootstrapApp"]["clientSecret"],
            "scope": "https://graph.microsoft.com/.default",
        }).encode()
        with urllib.request.urlopen(urllib.request.Request(f"{base}/{tenant['id']}/oauth2/v2.0/token", data=form)) as r:
            token = json.loads(r.read())["access_token"]
        url = f"{base}/v1.0/deviceManagement/managedDevices?" + urllib.parse.quote("$filter=operatingSystem eq 'iOS'&$top=1000", safe="$&=")
        times, seen = [], 0
        while url:
            t0 = time.perf_counter()
            page = call("GET", url, token=token)
            times.append((time.perf_counter() - t0) * 1000)
            seen += len(page["value"])
            url = page.get("@odata.nextLink")
        print(f"walked {len(times)} pages, {seen} iOS devices (count said {page['@odata.count']})")
        print(f"page latency: first {times[0]:.1f} ms, median {statistics.median(times):.1f} ms, last {times[-1]:.1f} ms, max {max(times):.1f} ms")
        tid = tenant["id"]
        last = psql(db_url, f"SELECT id FROM managed_devices WHERE tenant_id = '{tid}' AND lower(operating_system COLLATE \"C\") = 'ios' ORDER BY id OFFSET 15000 LIMIT 1").strip()
        print("\nplan of a deep page (keyset, after the 15,000th iOS device):")
        print(psql(db_url, f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM managed_devices WHERE tenant_id = '{tid}' AND (lower(operating_system COLLATE \"C\") = 'ios') AND id > '{last}' ORDER BY id LIMIT 1001 OFFSET 0"))
        print("plan of the count:")
        print(psql(db_url, f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT COUNT(*) FROM managed_devices WHERE tenant_id = '{tid}' AND (lower(operating_system COLLATE \"C\") = 'ios')"))
    finally:
        server.terminate()
        server.wait()
        psql(ADMIN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
