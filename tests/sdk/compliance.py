"""The official Graph SDKs create a compliance policy with its scheduled actions inline, assign
it, and read back deviceStatuses and a device's deviceCompliancePolicyStates.

Usage: compliance.py BASE_URL TOKEN TENANT_ID GROUP_ID DEVICE_ID. The device belongs to a user
of the group, and its MTD partner reports it at high threat. Changes that reach many devices are
applied by the emulator's worker; the script settles the tenant (the control plane) where the
worker would have run. Exits non-zero on the first failed expectation.
"""

import asyncio
import sys

from device_management import client, expect, settle


async def v1(base: str, token: str, tenant_id: str, group_id: str, device_id: str):
    import msgraph
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.device_management.device_compliance_policies.item.assign.assign_post_request_body import (
        AssignPostRequestBody,
    )
    from msgraph.generated.device_management.device_compliance_policies.item.device_compliance_policy_item_request_builder import (
        DeviceCompliancePolicyItemRequestBuilder,
    )
    from msgraph.generated.models.compliance_status import ComplianceStatus
    from msgraph.generated.models.device_compliance_action_item import DeviceComplianceActionItem
    from msgraph.generated.models.device_compliance_action_type import DeviceComplianceActionType
    from msgraph.generated.models.device_compliance_policy_assignment import DeviceCompliancePolicyAssignment
    from msgraph.generated.models.device_compliance_scheduled_action_for_rule import (
        DeviceComplianceScheduledActionForRule,
    )
    from msgraph.generated.models.device_threat_protection_level import DeviceThreatProtectionLevel
    from msgraph.generated.models.group_assignment_target import GroupAssignmentTarget
    from msgraph.generated.models.ios_compliance_policy import IosCompliancePolicy
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    graph = client(msgraph, f"{base}/v1.0", token)
    policies = graph.device_management.device_compliance_policies

    # Without a block action the service refuses the policy.
    try:
        await policies.post(IosCompliancePolicy(display_name="no block", scheduled_actions_for_rule=[]))
        expect(False, "a policy without a block action is refused")
    except ODataError as e:
        expect(e.response_status_code == 400, f"{e.response_status_code}")
        expect(
            e.error.message == "Compliance policy must have one and only one block scheduled action",
            e.error.message,
        )

    created = await policies.post(
        IosCompliancePolicy(
            display_name="iOS MTD (SDK)",
            device_threat_protection_enabled=True,
            device_threat_protection_required_security_level=DeviceThreatProtectionLevel.Medium,
            scheduled_actions_for_rule=[
                DeviceComplianceScheduledActionForRule(
                    rule_name="PasswordRequired",
                    scheduled_action_configurations=[
                        DeviceComplianceActionItem(
                            action_type=DeviceComplianceActionType.Block,
                            grace_period_hours=0,
                            notification_template_id="",
                            notification_message_c_c_list=[],
                        )
                    ],
                )
            ],
        )
    )
    expect(isinstance(created, IosCompliancePolicy), f"the SDK picks the subtype: {type(created)}")
    expect(created.version == 1, f"version {created.version}")
    item = policies.by_device_compliance_policy_id(created.id)

    query = DeviceCompliancePolicyItemRequestBuilder.DeviceCompliancePolicyItemRequestBuilderGetQueryParameters(
        expand=["scheduledActionsForRule($expand=scheduledActionConfigurations)"]
    )
    got = await item.get(request_configuration=RequestConfiguration(query_parameters=query))
    actions = got.scheduled_actions_for_rule[0].scheduled_action_configurations
    expect(
        [a.action_type for a in actions] == [DeviceComplianceActionType.Block],
        f"scheduled actions read back: {actions}",
    )

    assigned = await item.assign.post(
        AssignPostRequestBody(
            assignments=[DeviceCompliancePolicyAssignment(target=GroupAssignmentTarget(group_id=group_id))]
        )
    )
    expect([a.id for a in assigned.value] == [f"{created.id}_{group_id}"], f"assignment ids {assigned.value}")
    expect(isinstance(assigned.value[0].target, GroupAssignmentTarget), "the target keeps its type")
    settle(base, tenant_id)

    statuses = await item.device_statuses.get()
    expect(len(statuses.value) == 1, f"one device: {statuses.value}")
    expect(statuses.value[0].status == ComplianceStatus.NonCompliant, f"status {statuses.value[0].status}")

    device_states = await graph.device_management.managed_devices.by_managed_device_id(
        device_id
    ).device_compliance_policy_states.get()
    state = next(s for s in device_states.value if s.id == created.id)
    expect(state.state == ComplianceStatus.NonCompliant, f"policy state {state.state}")
    expect(state.setting_states[0].current_value == "high", f"setting {state.setting_states[0].current_value}")
    device = await graph.device_management.managed_devices.by_managed_device_id(device_id).get()
    expect(device.compliance_state.value == "noncompliant", f"device {device.compliance_state}")
    return created.id


async def beta(base: str, token: str, tenant_id: str, policy_id: str, device_id: str):
    import msgraph_beta
    from msgraph_beta.generated.device_management.device_compliance_policies.item.schedule_actions_for_rules.schedule_actions_for_rules_post_request_body import (
        ScheduleActionsForRulesPostRequestBody,
    )
    from msgraph_beta.generated.models.compliance_status import ComplianceStatus
    from msgraph_beta.generated.models.device_compliance_action_item import DeviceComplianceActionItem
    from msgraph_beta.generated.models.device_compliance_action_type import DeviceComplianceActionType
    from msgraph_beta.generated.models.device_compliance_scheduled_action_for_rule import (
        DeviceComplianceScheduledActionForRule,
    )

    graph = client(msgraph_beta, f"{base}/beta", token)
    item = graph.device_management.device_compliance_policies.by_device_compliance_policy_id(policy_id)
    # A day of grace: the device is in its grace period, still noncompliant with the policy.
    await item.schedule_actions_for_rules.post(
        ScheduleActionsForRulesPostRequestBody(
            device_compliance_scheduled_action_for_rules=[
                DeviceComplianceScheduledActionForRule(
                    rule_name="PasswordRequired",
                    scheduled_action_configurations=[
                        DeviceComplianceActionItem(action_type=DeviceComplianceActionType.Block, grace_period_hours=24)
                    ],
                )
            ]
        )
    )
    settle(base, tenant_id)
    device = await graph.device_management.managed_devices.by_managed_device_id(device_id).get()
    expect(device.compliance_state.value == "inGracePeriod", f"device {device.compliance_state}")
    overview = await item.device_status_overview.get()
    expect(overview.failed_count == 1 and overview.configuration_version == 3, f"overview {overview}")
    users = await item.user_statuses.get()
    expect(users.value[0].status == ComplianceStatus.NonCompliant, f"user status {users.value[0].status}")


async def main():
    base, token, tenant_id, group_id, device_id = sys.argv[1:6]
    policy_id = await v1(base, token, tenant_id, group_id, device_id)
    await beta(base, token, tenant_id, policy_id, device_id)
    print("ok")


asyncio.run(main())
