"""MSAL's PublicClientApplication signs a user in with the device code flow over HTTPS: the user
approves the code on the emulator's /devicelogin page (over plain HTTP, as from another device),
and the Graph SDK reads the tenant's MTD connectors with the delegated token.

Usage: device_flow.py HTTPS_BASE HTTP_BASE TENANT CLIENT_ID USERNAME PASSWORD, with the
emulator's CA trusted (SSL_CERT_FILE, REQUESTS_CA_BUNDLE).
"""

import asyncio
import sys

import msal
import requests
from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator, BaseBearerTokenAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient

from device_management import expect

SCOPE = "https://graph.microsoft.com/DeviceManagementServiceConfig.Read.All"


class Token(AccessTokenProvider):
    def __init__(self, token):
        self.token = token

    async def get_authorization_token(self, uri, additional_authentication_context={}):
        return self.token

    def get_allowed_hosts_validator(self):
        return AllowedHostsValidator([])


async def read_connectors(base: str, token: str):
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(Token(token)))
    adapter.base_url = f"{base}/v1.0"
    graph = GraphServiceClient(request_adapter=adapter)
    page = await graph.device_management.mobile_threat_defense_connectors.get()
    expect([c.id for c in page.value] == ["2c7790de-8b02-4814-85cf-e0c59380dee8"], f"connectors: {page.value}")


def main():
    base, http_base, tenant, client_id, username, password = sys.argv[1:7]
    app = msal.PublicClientApplication(client_id, authority=f"{base}/{tenant}", instance_discovery=False)
    flow = app.initiate_device_flow(scopes=[SCOPE])
    expect("user_code" in flow, f"a device flow: {flow}")
    expect(flow["verification_uri"] == f"{base}/devicelogin", flow["verification_uri"])
    expect(flow["user_code"] in flow["message"], flow["message"])

    # Before the user signs in, the token endpoint says to keep polling.
    pending = requests.post(
        f"{base}/{tenant}/oauth2/v2.0/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": client_id, "device_code": flow["device_code"]},
        timeout=10,
    ).json()
    expect(pending.get("error") == "authorization_pending" and 70016 in pending.get("error_codes", []), pending)

    # A wrong password, then the right one, on the page (another device: plain HTTP).
    page = requests.get(f"{http_base}/devicelogin", params={"otc": flow["user_code"]}, timeout=10)
    expect(page.status_code == 200 and f'value="{flow["user_code"]}"' in page.text, page.text)
    wrong = requests.post(f"{http_base}/devicelogin", data={"otc": flow["user_code"], "login": username, "passwd": "nope"}, timeout=10)
    expect(wrong.status_code == 400 and "account or password is incorrect" in wrong.text, wrong.text)
    code = flow["user_code"].lower()[:4] + "-" + flow["user_code"].lower()[4:]
    ok = requests.post(f"{http_base}/devicelogin", data={"otc": code, "login": username, "passwd": password}, timeout=10)
    expect(ok.status_code == 200 and "You have signed in" in ok.text, ok.text)
    again = requests.post(f"{http_base}/devicelogin", data={"otc": flow["user_code"], "login": username, "passwd": password}, timeout=10)
    expect(again.status_code == 400 and "used already" in again.text, again.text)

    result = app.acquire_token_by_device_flow(flow)
    expect("access_token" in result, f"MSAL got a token: {result}")
    expect(SCOPE in result.get("scope", "") or "DeviceManagementServiceConfig.Read.All" in " ".join(result.get("scope", [])), result.get("scope"))
    asyncio.run(read_connectors(base, result["access_token"]))

    # openid (MSAL asks for it): an ID token MSAL validated, and an account in its cache.
    claims = result.get("id_token_claims", {})
    expect(claims.get("preferred_username") == username and claims.get("aud") == client_id, claims)
    expect(claims.get("iss") == f"https://login.microsoftonline.com/{tenant}/v2.0", claims.get("iss"))
    accounts = app.get_accounts(username=username)
    expect(len(accounts) == 1, f"one account: {accounts}")

    # offline_access: MSAL refreshes silently with the refresh token, which rotates.
    first_refresh = result["refresh_token"]
    refreshed = app.acquire_token_silent([SCOPE], account=accounts[0], force_refresh=True)
    expect(refreshed and "access_token" in refreshed and refreshed["access_token"] != result["access_token"], refreshed)
    asyncio.run(read_connectors(base, refreshed["access_token"]))
    reused = requests.post(
        f"{base}/{tenant}/oauth2/v2.0/token",
        data={"grant_type": "refresh_token", "client_id": client_id, "refresh_token": first_refresh},
        timeout=10,
    ).json()
    expect(reused.get("error") == "invalid_grant" and 70000 in reused.get("error_codes", []), f"a spent refresh token: {reused}")

    # The code is spent.
    spent = requests.post(
        f"{base}/{tenant}/oauth2/v2.0/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": client_id, "device_code": flow["device_code"]},
        timeout=10,
    ).json()
    expect(spent.get("error") == "invalid_grant" and 70000 in spent.get("error_codes", []), spent)
    print("signed in with the device code flow")


if __name__ == "__main__":
    main()
