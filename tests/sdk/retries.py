"""The official Python Graph SDK's retry handler (Kiota's, default settings) gets through the
emulator's faults and throttling without its caller noticing.

Usage: retries.py BASE_URL TOKEN TENANT_ID PHASE, PHASE one of:
  fault     one list of managedDevices, while a rule fails the next one with 503;
  throttled one list of managedDevices to warm up, then two in a fresh window of the tenant's
            clock, while the devices bucket allows the app one request per window: the second
            is answered 429 with Retry-After, and retried in the next window.
Exits non-zero on the first failed expectation.
"""

import asyncio
import json
import sys
import time
import urllib.request

import msgraph
from device_management import client, expect


def control(base: str, method: str, path: str, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}{path}", data=data, method=method)
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"null")


async def main(base: str, token: str, tenant_id: str, phase: str):
    graph = client(msgraph, f"{base}/v1.0", token)
    if phase == "fault":
        started = time.monotonic()
        page = await graph.device_management.managed_devices.get()
        expect(page is not None and page.value is not None, "the list came through the 503")
        expect(time.monotonic() - started >= 1.0, "the handler waited for Retry-After")
    elif phase == "throttled":
        # Warmed up first, so that the two lists below come within one window.
        await graph.device_management.managed_devices.get()
        clock = control(base, "GET", f"/_emulator/tenants/{tenant_id}/clock")
        window = 2
        now = clock["now"]
        from datetime import datetime, timedelta

        at = datetime.fromisoformat(now.replace("Z", "+00:00"))
        start = at.replace(microsecond=0) + timedelta(seconds=window - at.second % window)
        control(base, "POST", f"/_emulator/tenants/{tenant_id}/clock", {"setTo": start.isoformat().replace("+00:00", "Z")})
        for _ in range(2):
            page = await graph.device_management.managed_devices.get()
            expect(page is not None and page.value is not None, "the list came through the 429")
    else:
        raise SystemExit(f"unknown phase {phase}")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
