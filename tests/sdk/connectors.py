"""The official Graph SDKs create, list, patch and delete an MTD connector.

Usage: connectors.py BASE_URL TOKEN. Exits non-zero on the first failed expectation.
"""

import asyncio
import sys

from device_management import client, expect

LOOKOUT = "2c7790de-8b02-4814-85cf-e0c59380dee8"
ZIMPERIUM = "08a8455c-48dd-45ff-ad82-7211355354f3"


async def v1(base: str, token: str):
    import msgraph
    from msgraph.generated.models.mobile_threat_defense_connector import MobileThreatDefenseConnector
    from msgraph.generated.models.mobile_threat_partner_tenant_state import MobileThreatPartnerTenantState
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    graph = client(msgraph, f"{base}/v1.0", token)
    connectors = graph.device_management.mobile_threat_defense_connectors
    created = await connectors.post(MobileThreatDefenseConnector(id=LOOKOUT, ios_enabled=True, partner_unresponsiveness_threshold_in_days=3))
    expect(created.id == LOOKOUT, f"created {created.id}")
    expect(created.ios_enabled is True and created.partner_unresponsiveness_threshold_in_days == 3, "settings echoed")
    # notSetUp is not a v1.0 member: the SDK sees the evolvable enum's sentinel.
    expect(created.partner_state == MobileThreatPartnerTenantState.UnknownFutureValue, f"state {created.partner_state}")
    page = await connectors.get()
    expect([c.id for c in page.value] == [LOOKOUT], f"listed {page.value}")
    result = await connectors.by_mobile_threat_defense_connector_id(LOOKOUT).patch(MobileThreatDefenseConnector(android_enabled=True))
    expect(result is None, "PATCH answers 204")
    got = await connectors.by_mobile_threat_defense_connector_id(LOOKOUT).get()
    expect(got.android_enabled is True and got.ios_enabled is True, "patched and kept")
    try:
        await connectors.post(MobileThreatDefenseConnector(id=LOOKOUT))
        expect(False, "a second connector for the same partner is refused")
    except ODataError as e:
        expect(e.response_status_code == 409, f"{e.response_status_code}")
    await connectors.by_mobile_threat_defense_connector_id(LOOKOUT).delete()
    page = await connectors.get()
    expect(page.value == [], "deleted")


async def beta(base: str, token: str):
    import msgraph_beta
    from msgraph_beta.generated.models.mobile_threat_defense_connector import MobileThreatDefenseConnector
    from msgraph_beta.generated.models.mobile_threat_partner_tenant_state import MobileThreatPartnerTenantState

    graph = client(msgraph_beta, f"{base}/beta", token)
    connectors = graph.device_management.mobile_threat_defense_connectors
    created = await connectors.post(MobileThreatDefenseConnector(id=ZIMPERIUM, mac_enabled=False, android_enabled=True))
    expect(created.partner_state == MobileThreatPartnerTenantState.NotSetUp, f"beta shows notSetUp: {created.partner_state}")
    expect(created.partner_display_name == "Zimperium", created.partner_display_name)
    await connectors.by_mobile_threat_defense_connector_id(ZIMPERIUM).patch(MobileThreatDefenseConnector(windows_mobile_application_management_enabled=True))
    got = await connectors.by_mobile_threat_defense_connector_id(ZIMPERIUM).get()
    expect(got.windows_mobile_application_management_enabled is True and got.android_enabled is True, "beta patch")
    page = await connectors.get()
    expect(len(page.value) == 1, "listed")
    await connectors.by_mobile_threat_defense_connector_id(ZIMPERIUM).delete()


async def main():
    base, token = sys.argv[1], sys.argv[2]
    await v1(base, token)
    await beta(base, token)
    print("ok")


asyncio.run(main())
