//! Report export jobs (`deviceManagement/reports/exportJobs`): a job is created `notStarted`;
//! the worker runs it on the tenant's clock (`inProgress`, then `completed` with its zip), taking
//! the data as it is then; the job's url serves the zip until it expires, six hours of the
//! tenant's clock after completion.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::{Ctx, ServiceError, ServiceResult};
use crate::domain::device::ManagedDevice;
use crate::domain::reports::{
    compare_by, file_columns, parse_filter, parse_order, report_row, report_schema, row_cells, search_matches,
    ExportJob, ExportRequest, ExportWriter, Filter, Format, Grain, Localization, PolicyResult, PolicySummary, Report,
    Row, EXPORT_LIFETIME_HOURS, REPORTS,
};
use crate::store::{ListQuery, ListScope, PolicyStateRow, Store, StoreError};

fn not_found(id: &str) -> ServiceError {
    ServiceError::not_found(format!("The export job '{id}' does not exist."))
}

/// An export job as the client asks for it.
pub struct NewExport {
    pub report_name: String,
    pub format: Option<String>,
    pub localization_type: Option<String>,
    pub select: Vec<String>,
    pub filter: Option<String>,
    pub search: Option<String>,
    pub snapshot_id: Option<String>,
}

/// The columns of a report, canonical spelling, in the order asked for (empty: all of them).
fn selected(report: Report, select: &[String]) -> ServiceResult<Vec<&'static str>> {
    let all = report.columns();
    if select.is_empty() {
        return Ok(all.to_vec());
    }
    select
        .iter()
        .map(|c| {
            all.iter().find(|k| k.eq_ignore_ascii_case(c)).copied().ok_or_else(|| {
                ServiceError::invalid(format!(
                    "The column '{c}' is not in the {} report; its columns are {}.",
                    report.name(),
                    all.join(", ")
                ))
            })
        })
        .collect()
}

/// A request's `filter`, parsed (none when empty).
fn filter_of(report: Report, filter: Option<&str>) -> ServiceResult<Option<Filter>> {
    match filter.filter(|f| !f.trim().is_empty()) {
        Some(f) => Ok(Some(
            parse_filter(f, report).map_err(|e| ServiceError::invalid(format!("Invalid filter: {e}")))?,
        )),
        None => Ok(None),
    }
}

/// Validates and records a job, `notStarted`.
pub async fn create(cx: &Ctx<'_>, req: NewExport) -> ServiceResult<ExportJob> {
    let report = Report::parse(&req.report_name).ok_or_else(|| {
        ServiceError::invalid(format!(
            "The report '{}' is not one the emulator exports; it exports {}.",
            req.report_name,
            REPORTS.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let format = match &req.format {
        None => Format::Csv,
        Some(f) => Format::parse(f).ok_or_else(|| {
            ServiceError::invalid(format!(
                "Invalid value for property 'format': '{f}'; the emulator exports csv and json."
            ))
        })?,
    };
    let localization = match &req.localization_type {
        None => Localization::AdditionalColumn,
        Some(l) => Localization::parse(l).ok_or_else(|| {
            ServiceError::invalid(format!(
                "Invalid value for property 'localizationType': '{l}'; use localizedValuesAsAdditionalColumn or replaceLocalizableValues."
            ))
        })?,
    };
    if req.snapshot_id.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ServiceError::invalid(
            "Snapshots (snapshotId) are not supported by the emulator: export from the live data.",
        ));
    }
    let columns = selected(report, &req.select)?;
    filter_of(report, req.filter.as_deref())?;
    let job = ExportJob {
        tenant_id: cx.tenant_id.to_string(),
        id: format!("{}_{}", report.name(), uuid::Uuid::new_v4()),
        report_name: report.name().to_string(),
        request: ExportRequest {
            format: format.as_str().to_string(),
            localization_type: localization.as_str().to_string(),
            select: if req.select.is_empty() {
                Vec::new()
            } else {
                columns.iter().map(|c| c.to_string()).collect()
            },
            filter: req.filter.filter(|f| !f.trim().is_empty()),
            search: req.search.filter(|s| !s.is_empty()),
        },
        status: "notStarted".into(),
        requested_at: cx.now,
        completed_at: None,
        expires_at: None,
        token: None,
    };
    cx.store().insert_export_job(&job).await?;
    Ok(job)
}

/// A job by id (`<ReportName>_<guid>`, the report name in any case).
pub async fn get(cx: &Ctx<'_>, id: &str) -> ServiceResult<ExportJob> {
    let canonical = match id.split_once('_') {
        Some((name, guid)) => match Report::parse(name) {
            Some(r) => format!("{}_{}", r.name(), guid.to_ascii_lowercase()),
            None => return Err(not_found(id)),
        },
        None => return Err(not_found(id)),
    };
    cx.store()
        .get_export_job(cx.tenant_id, &canonical)
        .await?
        .ok_or_else(|| not_found(id))
}

pub async fn list(cx: &Ctx<'_>) -> ServiceResult<Vec<ExportJob>> {
    Ok(cx.store().list_export_jobs(cx.tenant_id).await?)
}

/// Runs the tenant's jobs waiting to run, oldest first, at `now` on its clock (the worker's
/// pass, holding the tenant's lease, after compliance is up to date). A job found in progress
/// was left by a worker that stopped: it runs again. Returns how many completed.
pub async fn run_pending(store: &dyn Store, tenant_id: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
    store.requeue_export_jobs(tenant_id).await?;
    let mut done = 0;
    while let Some(job) = store.next_export_job(tenant_id).await? {
        if !store
            .set_export_job_status(tenant_id, &job.id, "notStarted", "inProgress")
            .await?
        {
            continue;
        }
        match generate(store, &job).await {
            Ok(zip) => {
                let completed = ExportJob {
                    status: "completed".into(),
                    completed_at: Some(now),
                    expires_at: Some(now + Duration::hours(EXPORT_LIFETIME_HOURS)),
                    token: Some(format!(
                        "{}{}",
                        uuid::Uuid::new_v4().simple(),
                        uuid::Uuid::new_v4().simple()
                    )),
                    ..job
                };
                if store.complete_export_job(&completed, &zip).await? {
                    done += 1;
                }
            }
            Err(e) => {
                tracing::warn!(job = %job.id, error = %e, "an export job failed");
                store
                    .set_export_job_status(tenant_id, &job.id, "inProgress", "failed")
                    .await?;
            }
        }
    }
    Ok(done)
}

/// Why a job failed: the database, or the file.
struct Failure(String);

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure(e.to_string())
    }
}

impl From<String> for Failure {
    fn from(e: String) -> Self {
        Failure(e)
    }
}

/// The job's zip: the report's rows as the data is now, streamed into the archive.
async fn generate(store: &dyn Store, job: &ExportJob) -> Result<Vec<u8>, String> {
    let report = Report::parse(&job.report_name).ok_or("an unknown report")?;
    let format = Format::parse(&job.request.format).ok_or("an unknown format")?;
    let localization =
        report.localization(Localization::parse(&job.request.localization_type).ok_or("an unknown localization")?);
    let columns = selected(report, &job.request.select).map_err(|e| e.to_string())?;
    let filter = filter_of(report, job.request.filter.as_deref()).map_err(|e| e.to_string())?;
    let keep = |r: &Row| {
        filter.as_ref().is_none_or(|f| f.matches(r))
            && job.request.search.as_deref().is_none_or(|s| search_matches(s, r))
    };
    // A page of devices at a time, each row written into the zip as it comes.
    let mut out = ExportWriter::start(&job.id, format, file_columns(&columns, localization))?;
    each_row_page(store, &job.tenant_id, report, |rows| {
        for r in rows.iter().filter(|r| keep(r)) {
            out.row(row_cells(&columns, localization, r))?;
        }
        Ok::<(), Failure>(())
    })
    .await
    .map_err(|Failure(e)| e)?;
    out.finish()
}

/// A report's rows, a page at a time, each page given to `each` as it comes, without holding
/// the tenant's devices at once. Device reports read the devices a page at a time (keyset on
/// the id), with their policy states when the report needs them; per-policy rows follow their
/// device's; a summary counts the states in the database and comes as one page.
async fn each_row_page<F, E>(store: &dyn Store, tenant_id: &str, report: Report, mut each: F) -> Result<(), E>
where
    F: FnMut(Vec<Row>) -> Result<(), E>,
    E: From<StoreError>,
{
    let grain = report.grain();
    if grain == Grain::Policy {
        let mut summaries: Vec<PolicySummary> = store
            .list_policies(tenant_id)
            .await?
            .iter()
            .map(|p| PolicySummary::new(&p.id, p.family))
            .collect();
        for (policy_id, state, n) in store.policy_state_counts(tenant_id).await? {
            if let Some(s) = summaries.iter_mut().find(|s| s.policy_id == policy_id) {
                s.count(&state, n);
            }
        }
        return each(summaries.into_iter().map(Row::Policy).collect());
    }
    let families: HashMap<String, crate::domain::compliance::PolicyFamily> = if grain == Grain::DevicePolicy {
        store
            .list_policies(tenant_id)
            .await?
            .into_iter()
            .map(|p| (p.id, p.family))
            .collect()
    } else {
        HashMap::new()
    };
    let needs_states = grain == Grain::DevicePolicy || report == Report::DevicesWithoutCompliancePolicy;
    let mut after: Option<String> = None;
    loop {
        let page = device_page(store, tenant_id, after.take()).await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = Some(last.id.clone());
        let mut states: HashMap<String, Vec<PolicyStateRow>> = HashMap::new();
        if needs_states {
            let ids: Vec<String> = page.iter().map(|d| d.id.clone()).collect();
            for s in store.policy_states_of_devices(tenant_id, &ids).await? {
                states.entry(s.device_id.clone()).or_default().push(s);
            }
        }
        let mut rows = Vec::with_capacity(page.len());
        for d in page {
            let of_device = states.remove(&d.id).unwrap_or_default();
            let d = Arc::new(d);
            if grain == Grain::DevicePolicy {
                rows.extend(of_device.into_iter().map(|s| {
                    let family = families.get(&s.policy_id).copied();
                    Row::DevicePolicy(
                        d.clone(),
                        PolicyResult {
                            policy_id: s.policy_id,
                            state: s.state,
                            family,
                        },
                    )
                }));
            } else if report.includes(&d, of_device.iter().any(|s| s.state != "notApplicable")) {
                rows.push(Row::Device(d));
            }
        }
        each(rows)?;
    }
}

/// A page of the tenant's devices after `after`, in id order.
async fn device_page(
    store: &dyn Store,
    tenant_id: &str,
    after: Option<String>,
) -> Result<Vec<ManagedDevice>, StoreError> {
    let query = ListQuery {
        filter: None,
        order_by: Vec::new(),
        scope: ListScope::All,
        limit: EXPORT_PAGE,
        offset: 0,
        after,
        count: false,
    };
    Ok(store.list_devices(tenant_id, &query).await?.items)
}

/// Devices read per round trip while a report runs.
const EXPORT_PAGE: u64 = 1000;

/// The file a completed job's url serves: the token must be the job's and the url not expired
/// (403 otherwise, as a storage account answers an invalid or expired signature).
pub async fn download(cx: &Ctx<'_>, id: &str, token: &str) -> ServiceResult<Vec<u8>> {
    let job = get(cx, id).await?;
    let valid = job.token.as_deref().is_some_and(|t| {
        use subtle::ConstantTimeEq;
        bool::from(t.as_bytes().ct_eq(token.as_bytes()))
    });
    if !valid {
        return Err(ServiceError::forbidden(
            "The signature of the export's url is not valid.",
        ));
    }
    if job.expires_at.is_none_or(|e| cx.now >= e) {
        return Err(ServiceError::forbidden(
            "The export's url has expired: request the export again.",
        ));
    }
    cx.store()
        .export_job_file(cx.tenant_id, &job.id)
        .await?
        .ok_or_else(|| not_found(id))
}

/// A completed export's file by its url (`/_downloads/reports/{tenantId}/{jobId}.zip?sig=`),
/// which carries no credentials but its signature: the tenant's clock decides its expiry.
pub async fn download_by_url(
    app: &super::App,
    tenant_id: &str,
    job_id: &str,
    token: &str,
    cause: &super::Cause,
) -> ServiceResult<Vec<u8>> {
    let tenant = super::tenants::get(app, tenant_id).await?;
    let now = app.tenant_now(tenant.clock_offset_us);
    download(&app.cx(&tenant.id, now, cause), job_id, token).await
}

/// A synchronous report request (`get*Report`), validated by the caller's parser.
pub struct ReportRequest {
    pub select: Vec<String>,
    pub filter: Option<String>,
    pub order_by: Vec<String>,
    pub search: Option<String>,
    pub skip: usize,
    pub top: Option<usize>,
}

/// A synchronous report action (`getDeviceNonComplianceReport`, ...): the report's rows now,
/// filtered, searched, ordered and paged, as `{TotalRowCount, Schema, Values}` (the Intune
/// reporting format). Every matching row is held to count and order them.
pub async fn run_report(cx: &Ctx<'_>, report: Report, req: ReportRequest) -> ServiceResult<serde_json::Value> {
    let columns = selected(report, &req.select)?;
    let filter = filter_of(report, req.filter.as_deref())?;
    let order = req
        .order_by
        .iter()
        .map(|o| parse_order(o, report.columns()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ServiceError::invalid)?;
    let mut rows: Vec<Row> = Vec::new();
    each_row_page(cx.store(), cx.tenant_id, report, |page| {
        rows.extend(page.into_iter().filter(|r| {
            filter.as_ref().is_none_or(|f| f.matches(r)) && req.search.as_deref().is_none_or(|s| search_matches(s, r))
        }));
        Ok::<(), ServiceError>(())
    })
    .await?;
    rows.sort_by(|a, b| {
        order
            .iter()
            .map(|(c, desc)| {
                let o = compare_by(c, a, b);
                if *desc {
                    o.reverse()
                } else {
                    o
                }
            })
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let total = rows.len();
    let values: Vec<serde_json::Value> = rows
        .iter()
        .skip(req.skip)
        .take(req.top.unwrap_or(usize::MAX))
        .map(|r| serde_json::Value::Array(report_row(&columns, r)))
        .collect();
    Ok(serde_json::json!({
        "TotalRowCount": total,
        "Schema": report_schema(&columns),
        "Values": values,
    }))
}
