"""The official Graph SDKs read Intune's reports: the beta SDK creates a DeviceCompliance export
job, polls it to completion and downloads its zip; both SDKs call the synchronous report actions
and parse the stream they answer.

Usage: reports.py BASE_URL TOKEN TENANT_ID POLICY_ID HIGH_DEVICE_ID SECURED_DEVICE_ID. The
partner reported the first device at high threat (noncompliant with the policy) and the second
as secured (compliant). Export jobs run on the emulator's worker; the script settles the tenant
(the control plane) while it polls, where the worker would have run. Exits non-zero on the first
failed expectation.
"""

import asyncio
import csv
import io
import json
import sys
import urllib.request
import zipfile

from device_management import client, expect, settle


async def beta(base: str, token: str, tenant_id: str, policy_id: str, high: str, secured: str):
    import msgraph_beta
    from msgraph_beta.generated.device_management.reports.get_device_non_compliance_report.get_device_non_compliance_report_post_request_body import (
        GetDeviceNonComplianceReportPostRequestBody,
    )
    from msgraph_beta.generated.device_management.reports.get_device_status_by_compliace_policy_report.get_device_status_by_compliace_policy_report_post_request_body import (
        GetDeviceStatusByCompliacePolicyReportPostRequestBody,
    )
    from msgraph_beta.generated.models.device_management_export_job import DeviceManagementExportJob
    from msgraph_beta.generated.models.device_management_export_job_localization_type import (
        DeviceManagementExportJobLocalizationType,
    )
    from msgraph_beta.generated.models.device_management_report_file_format import DeviceManagementReportFileFormat
    from msgraph_beta.generated.models.device_management_report_status import DeviceManagementReportStatus
    from msgraph_beta.generated.models.o_data_errors.o_data_error import ODataError

    graph = client(msgraph_beta, f"{base}/beta", token)
    jobs = graph.device_management.reports.export_jobs

    job = await jobs.post(
        DeviceManagementExportJob(
            report_name="DeviceCompliance",
            format=DeviceManagementReportFileFormat.Csv,
            localization_type=DeviceManagementExportJobLocalizationType.LocalizedValuesAsAdditionalColumn,
            select=["DeviceId", "DeviceName", "DeviceHealthThreatLevel", "ComplianceState"],
        )
    )
    expect(job.status == DeviceManagementReportStatus.NotStarted, f"a new job: {job.status}")
    expect(job.id.startswith("DeviceCompliance_"), job.id)
    expect(job.url is None, f"no url before completion: {job.url}")

    # Poll as scripts do, the worker's pass standing in between two polls.
    for _ in range(5):
        job = await jobs.by_device_management_export_job_id(job.id).get()
        if job.status == DeviceManagementReportStatus.Completed:
            break
        expect(job.status in (DeviceManagementReportStatus.NotStarted, DeviceManagementReportStatus.InProgress), f"{job.status}")
        settle(base, tenant_id)
    expect(job.status == DeviceManagementReportStatus.Completed, f"completed: {job.status}")
    expect(job.expiration_date_time is not None and job.expiration_date_time.year > 2000, f"{job.expiration_date_time}")

    with urllib.request.urlopen(job.url) as response:
        archive = zipfile.ZipFile(io.BytesIO(response.read()))
    names = archive.namelist()
    expect(names == [f"{job.id}.csv"], f"one file named after the job: {names}")
    rows = list(csv.DictReader(io.StringIO(archive.read(names[0]).decode("utf-8-sig"))))
    by_id = {r["DeviceId"]: r for r in rows}
    expect(by_id[high]["DeviceHealthThreatLevel"] == "6", f"{by_id[high]}")
    expect(by_id[high]["DeviceHealthThreatLevel_loc"] == "High", f"{by_id[high]}")
    expect(by_id[high]["ComplianceState_loc"] == "Not compliant", f"{by_id[high]}")
    expect(by_id[secured]["DeviceHealthThreatLevel_loc"] == "Secured", f"{by_id[secured]}")
    expect(by_id[secured]["ComplianceState"] == "1", f"{by_id[secured]}")

    # A report name the emulator does not export is refused as the service refuses it.
    try:
        await jobs.post(DeviceManagementExportJob(report_name="NoSuchReport"))
        expect(False, "an unknown report is refused")
    except ODataError as e:
        expect(e.response_status_code == 400, f"{e.response_status_code}")

    # The synchronous actions answer bytes: the Intune reporting stream.
    stream = await graph.device_management.reports.get_device_non_compliance_report.post(
        GetDeviceNonComplianceReportPostRequestBody(
            select=["DeviceId", "DeviceHealthThreatLevel"], filter="(OS eq 'IOS')", top=10, skip=0
        )
    )
    report = json.loads(stream)
    expect(report["TotalRowCount"] == 1, f"{report}")
    expect(
        [c["Column"] for c in report["Schema"]] == ["DeviceId", "DeviceHealthThreatLevel", "DeviceHealthThreatLevel_loc"],
        f"{report['Schema']}",
    )
    expect(report["Values"] == [[high, 6, "High"]], f"{report['Values']}")

    stream = await graph.device_management.reports.get_device_status_by_compliace_policy_report.post(
        GetDeviceStatusByCompliacePolicyReportPostRequestBody(
            filter=f"(PolicyId eq '{policy_id}')", select=["DeviceId", "PolicyStatus"], order_by=["PolicyStatus desc"]
        )
    )
    report = json.loads(stream)
    expect(report["Values"] == [[high, 4, "Not compliant"], [secured, 2, "Compliant"]], f"{report['Values']}")


async def v1(base: str, token: str, high: str):
    import msgraph
    from msgraph.generated.device_management.reports.get_device_non_compliance_report.get_device_non_compliance_report_post_request_body import (
        GetDeviceNonComplianceReportPostRequestBody,
    )

    graph = client(msgraph, f"{base}/v1.0", token)
    stream = await graph.device_management.reports.get_device_non_compliance_report.post(
        GetDeviceNonComplianceReportPostRequestBody(select=["DeviceId", "ComplianceState"])
    )
    report = json.loads(stream)
    expect(report["Values"] == [[high, "2", "Not compliant"]], f"{report}")


async def main():
    base, token, tenant_id, policy_id, high, secured = sys.argv[1:7]
    await beta(base, token, tenant_id, policy_id, high, secured)
    await v1(base, token, high)
    print("ok")


asyncio.run(main())
