#!/usr/bin/env python3
"""Threat-report ingest through the partner API, in batches of 500.

Usage: bench/ingest.py sqlite|postgres [DEVICES] [ROUNDS] [CLIENTS] [BINARY]
(defaults: 20000 devices, 5 rounds, 2 clients, target/release/intune-mtd-emulator)

Starts the server on a scratch database (a temporary SQLite file, or a new database on the
local PostgreSQL named by MTD_EMULATOR_BENCH_POSTGRES_URL), enrolls DEVICES devices (half iOS,
half Android), creates a Lookout connector with both platforms on, and a partner app. Each
round reports every device once, with a newer reportedDateTime than the last round, in
batches of 500 sent by CLIENTS concurrent keep-alive connections. Prints the rate of accepted
reports per second per round and overall. Each report is stored and the device's
partnerReportedThreatState updated before the batch's response is sent.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

ADMIN = os.environ.get("MTD_EMULATOR_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
LOOKOUT = "2c7790de-8b02-4814-85cf-e0c59380dee8"


class Client:
    def __init__(self, port: int, token: str | None = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.token = token

    def call(self, method: str, path: str, body=None, form=None):
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["content-type"] = "application/x-www-form-urlencoded"
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        raw = r.read()
        if r.status >= 400:
            raise SystemExit(f"{method} {path}: {r.status} {raw[:300]!r}")
        return json.loads(raw) if raw else None


def main() -> None:
    backend = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    devices = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    clients = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    binary = sys.argv[5] if len(sys.argv) > 5 else "target/release/intune-mtd-emulator"
    tmp = tempfile.TemporaryDirectory()
    db_name = None
    if backend == "postgres":
        db_name = f"mtd_bench_{int(time.time())}"
        subprocess.run(["psql", ADMIN, "-X", "-q", "-c", f'CREATE DATABASE "{db_name}"'], check=True)
        db_url = ADMIN.rsplit("/", 1)[0] + "/" + db_name
    else:
        db_url = f"sqlite://{tmp.name}/emulator.db"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--no-https", "--database-url", db_url, "--log-filter", "warn"])
    try:
        for _ in range(200):
            try:
                Client(port).call("GET", "/readyz")
                break
            except (OSError, SystemExit):
                time.sleep(0.05)
        admin = Client(port)
        tenant = admin.call("POST", "/_emulator/tenants", {})
        tid = tenant["id"]
        boot = tenant["bootstrapApp"]
        ids = []
        for start in range(0, devices, 1000):
            batch = [
                {"deviceName": f"d{i}", "operatingSystem": "iOS" if i % 2 else "Android", "osVersion": "17.0"}
                for i in range(start, min(start + 1000, devices))
            ]
            ids += [d["id"] for d in admin.call("POST", f"/_emulator/tenants/{tid}/devices", batch)["value"]]

        def token(client_id: str, secret: str) -> str:
            return Client(port).call("POST", f"/{tid}/oauth2/v2.0/token", form={
                "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
                "scope": "https://graph.microsoft.com/.default"})["access_token"]

        graph = Client(port, token(boot["clientId"], boot["clientSecret"]))
        graph.call("POST", "/beta/deviceManagement/mobileThreatDefenseConnectors", {"id": LOOKOUT, "iosEnabled": True, "androidEnabled": True})
        app = admin.call("POST", f"/_emulator/tenants/{tid}/apps", {"displayName": "bench partner", "kind": "partner", "connectorId": LOOKOUT})
        partner_token = token(app["clientId"], app["clientSecret"])
        Client(port, partner_token).call("POST", "/partner/v1/connector/heartbeat")

        levels = ["secured", "low", "medium", "high"]
        base_time = datetime.now(timezone.utc) - timedelta(days=1)
        total_accepted, total_time = 0, 0.0
        for r in range(rounds):
            at = (base_time + timedelta(seconds=r)).isoformat().replace("+00:00", "Z")
            batches = [
                [{"deviceId": d, "threatLevel": levels[(i + r) % 4], "reportedDateTime": at} for i, d in enumerate(ids[s:s + 500])]
                for s in range(0, len(ids), 500)
            ]
            accepted = [0] * clients
            def work(k: int):
                c = Client(port, partner_token)
                for b in batches[k::clients]:
                    accepted[k] += c.call("POST", "/partner/v1/deviceThreatStates", {"value": b})["accepted"]
            threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - t0
            total_accepted += sum(accepted)
            total_time += elapsed
            print(f"round {r + 1}: {sum(accepted)} accepted in {elapsed:.2f} s = {sum(accepted) / elapsed:.0f} reports/s")
        print(f"{backend}: {total_accepted} reports in {total_time:.2f} s = {total_accepted / total_time:.0f} reports/s "
              f"(batches of 500, {clients} clients, {devices} devices)")
    finally:
        server.terminate()
        server.wait()
        if db_name:
            subprocess.run(["psql", ADMIN, "-X", "-q", "-c", f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'], check=True)


if __name__ == "__main__":
    main()
