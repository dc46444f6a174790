#!/usr/bin/env python3
"""A full re-evaluation of a large tenant on PostgreSQL, Graph reads during it, and the cost of
an idle worker tick.

Usage: bench/reevaluate.py [DEVICES] [BINARY]
(defaults: 100000 devices, target/release/intune-mtd-emulator)
With ACTIONS=1 in the environment, the policy also sends an email (from a template) and a push
notification at 0 h to every noncompliant device: the actions are stored with the verdicts.

On a new database on the local PostgreSQL (MTD_EMULATOR_BENCH_POSTGRES_URL), starts the server
without its worker, creates a tenant, and inserts DEVICES iOS devices straight into the table
with SQL (enrolling a million through the API would measure enrolment, not evaluation); half run
iOS 17.4, half 15.1. It then creates an iOS policy requiring at least 16.0, assigns it to all
devices (which queues every device) and times `settle`, which re-evaluates them all, while one
client reads a device by id through Graph in a loop; it prints the settle time and the reads'
count and latency percentiles. Last, it starts a second server with its worker ticking every
100 ms over the settled database and reads `worker_tick_duration_seconds` from its /metrics
after 10 seconds: the mean idle tick.
"""

import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from ingest import ADMIN, Client  # noqa: E402


def start(binary: str, db_url: str, *extra: str):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--no-https", "--database-url", db_url,
                             "--log-filter", os.environ.get("LOG", "warn"), *extra])
    for _ in range(400):
        try:
            Client(port).call("GET", "/readyz")
            return proc, port
        except (OSError, SystemExit):
            time.sleep(0.05)
    raise SystemExit("the server did not become ready")


def metric(port: int, name: str) -> float:
    c = Client(port)
    c.conn.request("GET", "/metrics")
    text = c.conn.getresponse().read().decode()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def main() -> None:
    devices = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    binary = sys.argv[2] if len(sys.argv) > 2 else "target/release/intune-mtd-emulator"
    db_name = f"mtd_bench_{int(time.time())}"
    subprocess.run(["psql", ADMIN, "-X", "-q", "-c", f'CREATE DATABASE "{db_name}"'], check=True)
    db_url = ADMIN.rsplit("/", 1)[0] + "/" + db_name
    procs = []
    try:
        server, port = start(binary, db_url, "--no-worker")
        procs.append(server)
        admin = Client(port)
        tenant = admin.call("POST", "/_emulator/tenants", {})
        tid = tenant["id"]
        boot = tenant["bootstrapApp"]
        t0 = time.perf_counter()
        subprocess.run(["psql", db_url, "-X", "-q", "-c", f"""
            INSERT INTO managed_devices (tenant_id, id, device_name, operating_system, os_version, platform, owner_type,
                azure_ad_device_id, model, manufacturer, serial_number, enrolled_at, last_sync_at,
                management_state, properties)
            SELECT '{tid}', md5('d' || g)::uuid::text, 'dev-' || g, 'iOS',
                CASE WHEN g % 2 = 0 THEN '17.4' ELSE '15.1' END, 'iOS', 'company', md5('e' || g)::uuid::text,
                'iPhone 15', 'Apple', 'SN' || g, now(), now(), 'managed', '{{}}'::jsonb
            FROM generate_series(1, {devices}) AS g;
            INSERT INTO device_compliance (tenant_id, device_id, compliance_state)
            SELECT '{tid}', md5('d' || g)::uuid::text, 'unknown' FROM generate_series(1, {devices}) AS g;
            ANALYZE managed_devices; ANALYZE device_compliance;"""], check=True)
        print(f"inserted {devices} devices in {time.perf_counter() - t0:.1f} s")

        token = Client(port).call("POST", f"/{tid}/oauth2/v2.0/token", form={
            "grant_type": "client_credentials", "client_id": boot["clientId"], "client_secret": boot["clientSecret"],
            "scope": "https://graph.microsoft.com/.default"})["access_token"]
        graph = Client(port, token)
        actions = [{"actionType": "block", "gracePeriodHours": 0}]
        if os.environ.get("ACTIONS"):
            template = graph.call("POST", "/beta/deviceManagement/notificationMessageTemplates", {
                "displayName": "Update", "defaultLocale": "en-us", "localizedNotificationMessages": [
                    {"locale": "en-us", "isDefault": True, "subject": "Update {{DeviceName}}",
                     "messageTemplate": "Please update {{DeviceName}}."}]})
            actions += [{"actionType": "notification", "gracePeriodHours": 0, "notificationTemplateId": template["id"]},
                        {"actionType": "pushNotification", "gracePeriodHours": 0}]
        policy = graph.call("POST", "/v1.0/deviceManagement/deviceCompliancePolicies", {
            "@odata.type": "#microsoft.graph.iosCompliancePolicy", "displayName": "iOS 16+", "osMinimumVersion": "16.0",
            "scheduledActionsForRule": [{"ruleName": "PasswordRequired", "scheduledActionConfigurations": actions}]})
        t0 = time.perf_counter()
        graph.call("POST", f"/v1.0/deviceManagement/deviceCompliancePolicies/{policy['id']}/assign", {
            "assignments": [{"target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}}]})
        print(f"assign (queues {devices} devices): {time.perf_counter() - t0:.2f} s")

        sample = subprocess.run(["psql", db_url, "-X", "-A", "-t", "-c",
                                 f"SELECT id FROM managed_devices WHERE tenant_id = '{tid}' LIMIT 1"],
                                check=True, capture_output=True, text=True).stdout.strip()
        stop = threading.Event()
        latencies = []

        def read():
            c = Client(port, token)
            while not stop.is_set():
                t = time.perf_counter()
                c.call("GET", f"/v1.0/deviceManagement/managedDevices/{sample}")
                latencies.append(time.perf_counter() - t)

        reader = threading.Thread(target=read)
        reader.start()
        t0 = time.perf_counter()
        settler = Client(port)
        settler.conn.timeout = 3600  # a million devices take minutes
        summary = settler.call("POST", f"/_emulator/tenants/{tid}/settle")
        elapsed = time.perf_counter() - t0
        stop.set()
        reader.join()
        print(f"settle: {summary['devicesEvaluated']} devices evaluated, {summary['complianceStateChanges']} changed, "
              f"{summary['actionsFired']} actions fired, "
              f"in {elapsed:.1f} s = {summary['devicesEvaluated'] / elapsed:.0f} devices/s")
        latencies.sort()
        pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000  # noqa: E731
        print(f"Graph GET by id during it: {len(latencies)} reads, p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, "
              f"max {latencies[-1] * 1000:.1f} ms")
        server.terminate()
        server.wait()
        procs.remove(server)

        worker, wport = start(binary, db_url, "--worker-tick-ms", "100")
        procs.append(worker)
        time.sleep(2)  # let a first pass log the tenant's state, if any
        s0, n0 = metric(wport, "worker_tick_duration_seconds_sum"), metric(wport, "worker_tick_duration_seconds_count")
        time.sleep(10)
        s1, n1 = metric(wport, "worker_tick_duration_seconds_sum"), metric(wport, "worker_tick_duration_seconds_count")
        ticks = n1 - n0
        print(f"idle worker: {ticks:.0f} ticks, mean {(s1 - s0) / max(ticks, 1) * 1000:.2f} ms per tick "
              f"({devices} devices in the tenant)")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        if not os.environ.get("KEEP"):
            subprocess.run(["psql", ADMIN, "-X", "-q", "-c", f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'], check=True)


if __name__ == "__main__":
    main()
