"""The official beta Graph SDK creates an iOS app protection policy with the "Max allowed
device threat level" rule, assigns it to a group through its assignments collection, reads it
back, and reads the managed app registrations (tenant-wide, the user's, and a registration's
intended policies); the v1.0 SDK lists the policy without the beta-only threat properties.

Usage: app_protection.py BASE_URL TOKEN GROUP_ID USER_ID. The user has a protected Outlook
registered on an unenrolled iPhone. Prints the policy's id. Exits non-zero on the first failed
expectation.
"""

import asyncio
import sys

from device_management import client, expect

OUTLOOK = "com.microsoft.Office.Outlook"


async def beta(base: str, token: str, group_id: str, user_id: str) -> str:
    import msgraph_beta
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph_beta.generated.device_app_management.ios_managed_app_protections.item.ios_managed_app_protection_item_request_builder import (
        IosManagedAppProtectionItemRequestBuilder,
    )
    from msgraph_beta.generated.models.group_assignment_target import GroupAssignmentTarget
    from msgraph_beta.generated.models.ios_managed_app_protection import IosManagedAppProtection
    from msgraph_beta.generated.models.ios_managed_app_registration import IosManagedAppRegistration
    from msgraph_beta.generated.models.ios_mobile_app_identifier import IosMobileAppIdentifier
    from msgraph_beta.generated.models.managed_app_device_threat_level import ManagedAppDeviceThreatLevel
    from msgraph_beta.generated.models.managed_app_remediation_action import ManagedAppRemediationAction
    from msgraph_beta.generated.models.managed_mobile_app import ManagedMobileApp
    from msgraph_beta.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph_beta.generated.models.targeted_managed_app_policy_assignment import (
        TargetedManagedAppPolicyAssignment,
    )

    graph = client(msgraph_beta, f"{base}/beta", token)
    policies = graph.device_app_management.ios_managed_app_protections

    # `warn` is not a remediation the threat rule takes.
    try:
        await policies.post(
            IosManagedAppProtection(
                display_name="warns",
                mobile_threat_defense_remediation_action=ManagedAppRemediationAction.Warn,
            )
        )
        expect(False, "warn is refused")
    except ODataError as e:
        expect(e.response_status_code == 400, f"{e.response_status_code}")

    created = await policies.post(
        IosManagedAppProtection(
            display_name="Outlook on iOS (SDK)",
            maximum_allowed_device_threat_level=ManagedAppDeviceThreatLevel.Low,
            mobile_threat_defense_remediation_action=ManagedAppRemediationAction.Block,
            apps=[ManagedMobileApp(mobile_app_identifier=IosMobileAppIdentifier(bundle_id=OUTLOOK))],
        )
    )
    expect(isinstance(created, IosManagedAppProtection), f"{type(created)}")
    expect(created.id.startswith("T_"), created.id)
    expect(created.maximum_allowed_device_threat_level == ManagedAppDeviceThreatLevel.Low, "threat level")
    expect(created.deployed_app_count == 1, f"deployedAppCount {created.deployed_app_count}")
    item = policies.by_ios_managed_app_protection_id(created.id)

    assignment = await item.assignments.post(
        TargetedManagedAppPolicyAssignment(target=GroupAssignmentTarget(group_id=group_id))
    )
    expect(assignment.target.group_id == group_id, f"{assignment.target}")

    # PATCH answers 204: the SDK returns nothing.
    await item.patch(IosManagedAppProtection(pin_required=True))

    config = RequestConfiguration(
        query_parameters=IosManagedAppProtectionItemRequestBuilder.IosManagedAppProtectionItemRequestBuilderGetQueryParameters(
            expand=["apps", "assignments"]
        )
    )
    got = await item.get(request_configuration=config)
    expect(got.pin_required is True, "patched")
    expect(got.is_assigned is True, "isAssigned")
    expect(len(got.assignments) == 1, f"{got.assignments}")
    expect(isinstance(got.apps[0].mobile_app_identifier, IosMobileAppIdentifier), f"{got.apps[0]}")
    expect(got.apps[0].mobile_app_identifier.bundle_id == OUTLOOK, "bundle id")

    registrations = await graph.device_app_management.managed_app_registrations.get()
    expect(len(registrations.value) == 1, f"{registrations.value}")
    r = registrations.value[0]
    expect(isinstance(r, IosManagedAppRegistration), f"the SDK picks the subtype: {type(r)}")
    expect(r.app_identifier.bundle_id == OUTLOOK, f"{r.app_identifier}")
    expect(r.user_id == user_id, r.user_id)
    expect(r.managed_device_id is None, "not enrolled")
    mine = await graph.users.by_user_id(user_id).managed_app_registrations.get()
    expect([x.id for x in mine.value] == [r.id], "the user's registrations")
    intended = await graph.device_app_management.managed_app_registrations.by_managed_app_registration_id(
        r.id
    ).intended_policies.get()
    expect([p.id for p in intended.value] == [created.id], f"{intended.value}")
    expect(isinstance(intended.value[0], IosManagedAppProtection), f"{type(intended.value[0])}")
    return created.id


async def v1(base: str, token: str, policy_id: str):
    import msgraph
    from msgraph.generated.models.ios_managed_app_protection import IosManagedAppProtection

    graph = client(msgraph, f"{base}/v1.0", token)
    listed = await graph.device_app_management.ios_managed_app_protections.get()
    expect([p.id for p in listed.value] == [policy_id], f"{listed.value}")
    p = listed.value[0]
    expect(isinstance(p, IosManagedAppProtection), f"{type(p)}")
    expect("maximumAllowedDeviceThreatLevel" not in (p.additional_data or {}), "beta only")
    summary = await graph.device_app_management.ios_managed_app_protections.by_ios_managed_app_protection_id(
        policy_id
    ).deployment_summary.get()
    expect(summary.display_name == "Outlook on iOS (SDK)", f"{summary}")


async def main(base: str, token: str, group_id: str, user_id: str):
    policy_id = await beta(base, token, group_id, user_id)
    await v1(base, token, policy_id)
    print(policy_id)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
