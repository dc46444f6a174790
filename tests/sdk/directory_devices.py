"""The official Graph SDKs page through managed devices and manage a group's members.

Usage: directory_devices.py BASE_URL TOKEN EXPECTED_IOS_DEVICE_IDS(comma-separated)
Exits non-zero on the first failed expectation.
"""

import asyncio
import sys

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph_core import PageIterator

from device_management import client, expect


async def v1(base: str, token: str, expected_ios: set[str]):
    import msgraph
    from msgraph.generated.device_management.managed_devices.managed_devices_request_builder import ManagedDevicesRequestBuilder
    from msgraph.generated.models.group import Group
    from msgraph.generated.models.password_profile import PasswordProfile
    from msgraph.generated.models.reference_create import ReferenceCreate
    from msgraph.generated.models.user import User

    graph = client(msgraph, f"{base}/v1.0", token)
    query = ManagedDevicesRequestBuilder.ManagedDevicesRequestBuilderGetQueryParameters(
        filter="operatingSystem eq 'iOS'", top=2, select=["id", "operatingSystem", "complianceState"]
    )
    first = await graph.device_management.managed_devices.get(request_configuration=RequestConfiguration(query_parameters=query))
    expect(len(first.value) == 2 and first.odata_next_link, "a first page of 2 with a next link")
    seen: list[str] = []

    def collect(device) -> bool:
        expect(device.operating_system == "iOS", f"only iOS devices: {device.operating_system}")
        seen.append(device.id)
        return True

    await PageIterator(first, graph.request_adapter).iterate(collect)
    expect(sorted(seen) == sorted(expected_ios), f"every iOS device once: {seen}")

    user = await graph.users.post(
        User(
            account_enabled=True,
            display_name="Adele Vance",
            mail_nickname="adele",
            user_principal_name="adele@contoso.example",
            password_profile=PasswordProfile(force_change_password_next_sign_in=False, password="Pa55w.rd!"),
        )
    )
    expect(user.id, "the user has an id")
    group = await graph.groups.post(Group(display_name="MTD pilot", mail_enabled=False, mail_nickname="mtdpilot", security_enabled=True))
    expect(group.id and group.security_enabled, "a security group")
    await graph.groups.by_group_id(group.id).members.ref.post(
        ReferenceCreate(odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{user.id}")
    )
    members = await graph.groups.by_group_id(group.id).members.get()
    expect([m.id for m in members.value] == [user.id], f"the user is the member: {members.value}")
    expect(members.value[0].odata_type == "#microsoft.graph.user", members.value[0].odata_type)
    await graph.groups.by_group_id(group.id).members.by_directory_object_id(user.id).ref.delete()
    members = await graph.groups.by_group_id(group.id).members.get()
    expect(members.value == [], "the member was removed")


async def beta(base: str, token: str, expected_ios: set[str]):
    import msgraph_beta
    from msgraph_beta.generated.device_management.managed_devices.managed_devices_request_builder import ManagedDevicesRequestBuilder

    graph = client(msgraph_beta, f"{base}/beta", token)
    query = ManagedDevicesRequestBuilder.ManagedDevicesRequestBuilderGetQueryParameters(filter="operatingSystem eq 'iOS'", top=3)
    first = await graph.device_management.managed_devices.get(request_configuration=RequestConfiguration(query_parameters=query))
    seen: list[str] = []
    await PageIterator(first, graph.request_adapter).iterate(lambda d: seen.append(d.id) is None)
    expect(sorted(seen) == sorted(expected_ios), f"beta: every iOS device once: {seen}")


async def main():
    base, token, ids = sys.argv[1], sys.argv[2], sys.argv[3]
    expected = {i for i in ids.split(",") if i}
    await v1(base, token, expected)
    await beta(base, token, expected)
    print("ok")


asyncio.run(main())
