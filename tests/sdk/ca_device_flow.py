"""MSAL Python's device code flow from a phone that Conditional Access requires to be compliant:
the device's credential rides on every token request (MSAL's http_client is a requests session
carrying the x-ms-RefreshTokenCredential header), the user approves the code on /devicelogin, and
MSAL gets either Entra's refusal (AADSTS53000) or the token.

Usage: ca_device_flow.py HTTPS_BASE HTTP_BASE TENANT CLIENT_ID USERNAME PASSWORD CREDENTIAL EXPECT,
EXPECT `refused` or `allowed`, with the emulator's CA trusted (SSL_CERT_FILE, REQUESTS_CA_BUNDLE).
"""

import sys

import msal
import requests

from device_management import expect

SCOPE = "https://outlook.office365.com/Mail.Read"


def main():
    base, http_base, tenant, client_id, username, password, credential, outcome = sys.argv[1:9]
    session = requests.Session()
    session.headers["x-ms-RefreshTokenCredential"] = credential
    app = msal.PublicClientApplication(
        client_id, authority=f"{base}/{tenant}", instance_discovery=False, http_client=session
    )
    flow = app.initiate_device_flow(scopes=[SCOPE])
    expect("user_code" in flow, f"a device flow: {flow}")
    ok = requests.post(
        f"{http_base}/devicelogin",
        data={"otc": flow["user_code"], "login": username, "passwd": password},
        timeout=10,
    )
    expect(ok.status_code == 200 and "You have signed in" in ok.text, ok.text)
    result = app.acquire_token_by_device_flow(flow)
    if outcome == "refused":
        expect("access_token" not in result, f"no token: {result}")
        expect(result.get("error") == "invalid_grant", result)
        expect(53000 in result.get("error_codes", []), result)
        expect(
            result.get("error_description", "").startswith("AADSTS53000: Device is not in required device state: compliant."),
            result.get("error_description"),
        )
    else:
        expect("access_token" in result, f"MSAL got a token: {result}")
        expect("Mail.Read" in " ".join(result.get("scope", [])) or "Mail.Read" in str(result.get("scope")), result.get("scope"))


if __name__ == "__main__":
    main()
