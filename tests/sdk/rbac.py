"""The official Graph SDKs, signed in as a user (delegated token), read Intune RBAC.

Usage: rbac.py BASE_URL TOKEN. The user holds Endpoint Security Manager through a group.
Exits non-zero on the first failed expectation.
"""

import asyncio
import sys

from device_management import client, expect

ESM = "c56d53a2-73d0-4502-b6bd-4a9d3dba28d5"
READ_ONLY_OPERATOR = "fa1d7878-e8cb-41a1-8254-0142355c9f84"


async def v1(base: str, token: str):
    import msgraph
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph.generated.models.role_definition import RoleDefinition

    graph = client(msgraph, f"{base}/v1.0", token)
    page = await graph.device_management.role_definitions.get()
    esm = next((r for r in page.value if r.id == ESM), None)
    expect(esm is not None, f"Endpoint Security Manager listed: {[r.id for r in page.value]}")
    expect(esm.display_name == "Endpoint Security Manager" and esm.is_built_in is True, f"{esm.display_name} {esm.is_built_in}")
    expect(type(esm).__name__ == "DeviceAndAppManagementRoleDefinition", type(esm).__name__)
    allowed = esm.role_permissions[0].resource_actions[0].allowed_resource_actions
    expect("Microsoft.Intune_MobileThreatDefense_Modify" in allowed, "ESM modifies MTD connectors")
    expect("Microsoft.Intune_DeviceCompliancePolices_Create" in allowed, "the misspelt compliance permission")
    got = await graph.device_management.role_definitions.by_role_definition_id(ESM).get()
    expect(got.id == ESM, f"got {got.id}")
    effective = await graph.device_management.get_effective_permissions_with_scope("AllLicensedUsers").get()
    mine = [a for p in effective.value for ra in p.resource_actions for a in ra.allowed_resource_actions]
    expect(set(mine) == set(allowed), "the user's effective permissions are the role's")
    # ESM reads roles but may not make them.
    try:
        await graph.device_management.role_definitions.post(RoleDefinition(display_name="Mine"))
        expect(False, "creating a role needs Microsoft.Intune_Roles_Create")
    except ODataError as e:
        expect(e.response_status_code == 403, f"{e.response_status_code}")
        expect(e.error.code == "Forbidden", e.error.code)


async def beta(base: str, token: str):
    import msgraph_beta

    graph = client(msgraph_beta, f"{base}/beta", token)
    ro = await graph.device_management.role_definitions.by_role_definition_id(READ_ONLY_OPERATOR).get()
    expect(ro.is_built_in_role_definition is True, "beta flag")
    listed = lambda ps: [a for p in ps for ra in p.resource_actions for a in ra.allowed_resource_actions]
    expect(listed(ro.permissions) == listed(ro.role_permissions), "permissions mirrors rolePermissions")
    expect("Microsoft.Intune_MobileThreatDefense_Read" in listed(ro.permissions), "Read Only Operator reads MTD")
    expect("Microsoft.Intune_MobileThreatDefense_Modify" not in listed(ro.permissions), "but does not modify it")
    ops = await graph.device_management.resource_operations.by_resource_operation_id("Microsoft.Intune_MobileThreatDefense_Read").get()
    expect(ops.resource_name == "Mobile Threat Defense" and ops.action_name == "Read", f"{ops.resource_name} {ops.action_name}")


async def main():
    base, token = sys.argv[1], sys.argv[2]
    await v1(base, token)
    await beta(base, token)
    print("ok")


asyncio.run(main())
