"""The official Graph SDKs read and patch deviceManagement through the emulator.

Usage: device_management.py BASE_URL TOKEN. Exits non-zero on the first failed expectation.
"""

import asyncio
import sys
import urllib.request

from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration


class StaticToken(AccessTokenProvider):
    def __init__(self, token: str):
        self._token = token

    async def get_authorization_token(self, uri, additional_authentication_context={}):
        return self._token

    def get_allowed_hosts_validator(self):
        return AllowedHostsValidator([])


def client(module, base_url: str, token: str):
    adapter = module.GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken(token)))
    adapter.base_url = base_url
    return module.GraphServiceClient(request_adapter=adapter)


def expect(condition, what):
    if not condition:
        raise AssertionError(what)


def settle(base: str, tenant_id: str):
    """Runs what the emulator's worker would (the control plane's settle)."""
    request = urllib.request.Request(f"{base}/_emulator/tenants/{tenant_id}/settle", method="POST")
    with urllib.request.urlopen(request) as response:
        expect(response.status == 200, f"settle {response.status}")


async def v1(base: str, token: str):
    import msgraph
    from msgraph.generated.models.device_management import DeviceManagement
    from msgraph.generated.models.device_management_settings import DeviceManagementSettings
    from msgraph.generated.models.device_management_subscription_state import DeviceManagementSubscriptionState
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    graph = client(msgraph, f"{base}/v1.0", token)
    dm = await graph.device_management.get()
    expect(dm.settings.device_compliance_checkin_threshold_days == 30, f"default threshold: {dm.settings}")
    expect(dm.settings.is_scheduled_action_enabled is True, "isScheduledActionEnabled defaults to true")
    expect(dm.settings.secure_by_default is False, "secureByDefault defaults to false")
    expect(dm.subscription_state == DeviceManagementSubscriptionState.Active, f"subscriptionState: {dm.subscription_state}")
    expect(dm.intune_account_id is not None, "intuneAccountId is a GUID")

    result = await graph.device_management.patch(
        DeviceManagement(settings=DeviceManagementSettings(secure_by_default=True, device_compliance_checkin_threshold_days=10))
    )
    expect(result is None, "PATCH answers 204")
    dm = await graph.device_management.get()
    expect(dm.settings.secure_by_default is True, "the patch is read back")
    expect(dm.settings.device_compliance_checkin_threshold_days == 10, "the threshold is read back")
    expect(dm.settings.is_scheduled_action_enabled is True, "untouched settings are kept")

    config = RequestConfiguration(query_parameters=graph.device_management.DeviceManagementRequestBuilderGetQueryParameters(select=["settings"]))
    dm = await graph.device_management.get(request_configuration=config)
    expect(dm.settings.secure_by_default is True and dm.subscription_state is None, "$select narrows the answer")

    try:
        await graph.device_management.patch(DeviceManagement(settings=DeviceManagementSettings(device_compliance_checkin_threshold_days=0)))
        expect(False, "a threshold of 0 is refused")
    except ODataError as e:
        expect(e.response_status_code == 400 and e.error.code == "BadRequest", f"{e.response_status_code} {e.error.code}")
        expect("deviceComplianceCheckinThresholdDays" in e.error.message, e.error.message)
        expect(e.error.inner_error is not None and e.error.inner_error.request_id, "innerError carries the request id")


async def beta(base: str, token: str):
    import msgraph_beta
    from msgraph_beta.generated.models.device_management.device_management import DeviceManagement
    from msgraph_beta.generated.models.device_management_settings import DeviceManagementSettings

    graph = client(msgraph_beta, f"{base}/beta", token)
    await graph.device_management.patch(DeviceManagement(settings=DeviceManagementSettings(enhanced_jail_break=True)))
    dm = await graph.device_management.get()
    expect(dm.settings.enhanced_jail_break is True, "beta-only setting is read back")
    expect(dm.settings.secure_by_default is True, "the v1.0 patch shows on beta")
    expect(dm.maximum_dep_tokens == 2000, f"beta property maximumDepTokens: {dm.maximum_dep_tokens}")


async def main():
    base, token = sys.argv[1], sys.argv[2]
    await v1(base, token)
    await beta(base, token)
    print("ok")


# Other scripts import client and expect from here: only run when executed.
if __name__ == "__main__":
    asyncio.run(main())
