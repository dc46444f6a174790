"""Microsoft's own auth libraries sign in to the emulator over HTTPS, unchanged: MSAL's
ConfidentialClientApplication and Azure Identity's ClientSecretCredential get client-credentials
tokens with the emulator as their authority, and the Graph SDK, given the credential itself (no
custom token provider), reads the tenant's MTD connectors with it.

Usage: signin.py HTTPS_BASE TENANT CLIENT_ID CLIENT_SECRET. The emulator's CA must be trusted:
SSL_CERT_FILE (httpx) and REQUESTS_CA_BUNDLE (requests, under MSAL and Azure Identity).
"""

import asyncio
import sys

import msal
import requests
from azure.identity import ClientSecretCredential
from msgraph import GraphServiceClient

from device_management import expect

GRAPH = "https://graph.microsoft.com/.default"


def discovery(base: str, tenant: str):
    doc = requests.get(f"{base}/{tenant}/v2.0/.well-known/openid-configuration", timeout=10).json()
    for key in ("token_endpoint", "jwks_uri", "issuer"):
        expect(doc[key].startswith("https://"), f"{key} names https: {doc[key]}")
    expect(doc["token_endpoint"] == f"{base}/{tenant}/oauth2/v2.0/token", doc["token_endpoint"])


def with_msal(base: str, tenant: str, client_id: str, secret: str) -> str:
    app = msal.ConfidentialClientApplication(
        client_id,
        client_credential=secret,
        authority=f"{base}/{tenant}",
        instance_discovery=False,
    )
    result = app.acquire_token_for_client(scopes=[GRAPH])
    expect("access_token" in result, f"MSAL got a token: {result}")
    again = app.acquire_token_for_client(scopes=[GRAPH])
    expect(again.get("token_source") == "cache", f"the second call is served from MSAL's cache: {again.get('token_source')}")
    r = requests.get(
        f"{base}/v1.0/deviceManagement/mobileThreatDefenseConnectors",
        headers={"Authorization": f"Bearer {result['access_token']}"},
        timeout=10,
    )
    expect(r.status_code == 200, f"Graph answers MSAL's token: {r.status_code} {r.text}")
    wrong = msal.ConfidentialClientApplication(
        client_id, client_credential="not-the-secret", authority=f"{base}/{tenant}", instance_discovery=False
    ).acquire_token_for_client(scopes=[GRAPH])
    expect(wrong.get("error") == "invalid_client", f"a wrong secret: {wrong}")
    expect("AADSTS7000215" in wrong.get("error_description", ""), wrong.get("error_description"))
    return result["access_token"]


async def with_azure_identity(base: str, tenant: str, client_id: str, secret: str):
    host = base.removeprefix("https://")
    credential = ClientSecretCredential(tenant, client_id, secret, authority=host, disable_instance_discovery=True)
    token = credential.get_token(GRAPH)
    expect(token.token.count(".") == 2, "a JWT")
    graph = GraphServiceClient(credentials=credential, scopes=[GRAPH])
    graph.request_adapter.base_url = f"{base}/v1.0"
    page = await graph.device_management.mobile_threat_defense_connectors.get()
    expect([c.id for c in page.value] == ["2c7790de-8b02-4814-85cf-e0c59380dee8"], f"connectors: {page.value}")


def main():
    base, tenant, client_id, secret = sys.argv[1:5]
    discovery(base, tenant)
    with_msal(base, tenant, client_id, secret)
    asyncio.run(with_azure_identity(base, tenant, client_id, secret))
    print("signed in with MSAL and Azure Identity over HTTPS")


if __name__ == "__main__":
    main()
