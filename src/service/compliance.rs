//! Applying the compliance rules (`domain::compliance::evaluate`) to stored devices: loading
//! what evaluation reads, storing the verdicts the Graph views read, and the trace `explain`
//! shows. Every view is built from the same stored result.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use crate::domain::compliance::{
    evaluate, ConnectorInput, DeviceInput, Policy, PolicyState, SettingState, SettingVerdict, TenantSettings, Verdict,
};
use crate::domain::device::Platform;
use crate::domain::mtd::{
    catalog_partner, is_unresponsive, partner_state, reported_threat_state, unresponsive_at, Connector, Reported,
};
use crate::domain::policy::StoredPolicy;
use crate::domain::time::rfc3339;
use crate::schema::device_management::DEFAULT_CHECKIN_THRESHOLD_DAYS;
use crate::service::{Cause, Ctx, ServiceResult};
use crate::store::{
    ComplianceChange, ComplianceRecord, DeviceScope, Evaluated, EvaluationInput, Event, FiredAction, PolicyStateRow,
    Store, StoreError, TenantRows, VerdictRow,
};

/// Devices evaluated per store round trip.
pub const BATCH: u64 = 2000;

/// What every device of a tenant is evaluated against.
#[derive(Clone)]
pub struct TenantContext {
    /// The tenant's change number when this was read (see `WorkerStore::queue_version`): the
    /// version of every evaluation made with it.
    pub version: i64,
    pub now: DateTime<Utc>,
    pub policies: Vec<StoredPolicy>,
    rules: Vec<Policy>,
    pub connectors: Vec<Connector>,
    pub settings: TenantSettings,
    /// `isScheduledActionEnabled`: actions for noncompliance other than block fire.
    pub actions_enabled: bool,
}

pub async fn load_context(store: &dyn Store, tenant_id: &str, now: DateTime<Utc>) -> Result<TenantContext, StoreError> {
    // First: every change up to this number is visible to what is read next.
    let version = store.queue_version(tenant_id).await?;
    let rows = TenantRows {
        version,
        policies: store.list_policies(tenant_id).await?,
        connectors: store.list_connectors(tenant_id).await?,
        device_management: store.get_device_management(tenant_id).await?,
    };
    Ok(TenantContext::new(rows, now))
}

impl TenantContext {
    /// The context of evaluations at `now` from the tenant-wide rows.
    pub fn new(rows: TenantRows, now: DateTime<Utc>) -> TenantContext {
        let dm = rows.device_management;
        let setting = |name: &str| {
            dm.as_ref()
                .and_then(|d| d.properties.get("settings"))
                .and_then(|s| s.get(name))
                .cloned()
        };
        let settings = TenantSettings {
            secure_by_default: setting("secureByDefault").and_then(|v| v.as_bool()).unwrap_or(false),
            checkin_threshold_days: setting("deviceComplianceCheckinThresholdDays")
                .and_then(|v| v.as_i64())
                .unwrap_or(DEFAULT_CHECKIN_THRESHOLD_DAYS),
        };
        let actions_enabled = setting("isScheduledActionEnabled")
            .and_then(|v| v.as_bool())
            .unwrap_or(true);
        TenantContext {
            version: rows.version,
            actions_enabled,
            now,
            rules: rows.policies.iter().map(StoredPolicy::rules).collect(),
            policies: rows.policies,
            connectors: rows.connectors,
            settings,
        }
    }

    /// The context of a device whose stored results an evaluation at a later time wrote (one
    /// that began after this one and committed first): its evaluation runs at that time, as the
    /// tenant's time never goes back. Otherwise it would see a noncompliance episode that
    /// starts after its `now`, and store the device as in its grace period until then.
    fn for_device(&self, input: &EvaluationInput) -> Option<TenantContext> {
        let latest = input.states.iter().map(|s| s.evaluated_at).max()?;
        (latest > self.now).then(|| TenantContext {
            now: latest,
            ..self.clone()
        })
    }

    /// Whether evaluation needs the groups of the devices and their users (see
    /// `domain::compliance::assigned_by_group`): reading them is a probe per device.
    pub fn needs_groups(&self) -> bool {
        crate::domain::compliance::assigned_by_group(&self.rules)
    }
}

/// The prefix of a connector's per-platform settings (`iosDeviceBlockedOnMissingPartnerData`).
fn platform_key(p: Platform) -> &'static str {
    match p {
        Platform::Ios => "ios",
        Platform::MacOs => "mac",
        Platform::Windows => "windows",
        _ => "android",
    }
}

/// The partner's minimum OS version for the platform: what it reported, else the catalog's.
fn partner_minimum(c: &Connector, p: Platform) -> Option<String> {
    let (key, catalog) = match p {
        Platform::Ios => (
            "partnerMinimumSupportedIosVersion",
            catalog_partner(&c.id).and_then(|x| x.min_ios),
        ),
        Platform::MacOs => (
            "partnerMinimumSupportedMacVersion",
            catalog_partner(&c.id).and_then(|x| x.min_mac),
        ),
        Platform::Windows => (
            "partnerMinimumSupportedWindowsVersion",
            catalog_partner(&c.id).and_then(|x| x.min_windows),
        ),
        _ => (
            "partnerMinimumSupportedAndroidVersion",
            catalog_partner(&c.id).and_then(|x| x.min_android),
        ),
    };
    c.partner_metadata
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| catalog.map(str::to_string))
}

/// The connectors as evaluation of a device of platform `p` sees them at `now`.
pub fn connector_inputs(connectors: &[Connector], p: Platform, now: DateTime<Utc>) -> Vec<ConnectorInput> {
    connectors
        .iter()
        .map(|c| {
            let status = c.status();
            let usable = c.set_up && !c.deprovisioned && !is_unresponsive(&status, now);
            ConnectorInput {
                id: c.id.clone(),
                usable,
                toggles: c.toggles(),
                blocked_on_missing_data: c.flag(&format!("{}DeviceBlockedOnMissingPartnerData", platform_key(p))),
                unsupported_os_blocked: c.flag("partnerUnsupportedOsVersionBlocked"),
                minimum_os_version: partner_minimum(c, p),
                // It is unresponsive once its last heartbeat is strictly older than the threshold.
                unresponsive_at: if usable {
                    unresponsive_at(&status).map(|t| t + Duration::microseconds(1))
                } else {
                    None
                },
            }
        })
        .collect()
}

fn device_input(input: &EvaluationInput) -> DeviceInput {
    let d = &input.device;
    DeviceInput {
        id: d.id.clone(),
        platform: d.platform,
        os_version: d.os_version.clone(),
        has_user: d.user_id.is_some(),
        user_groups: input.user_groups.iter().cloned().collect::<HashSet<_>>(),
        device_groups: input.device_groups.iter().cloned().collect::<HashSet<_>>(),
        last_check_in: d.last_sync_at,
        reports: input
            .reports
            .iter()
            .filter_map(|r| Reported::from_graph_state(&r.state).map(|x| (r.connector_id.clone(), x)))
            .collect(),
    }
}

pub fn policy_state_name(s: PolicyState) -> &'static str {
    match s {
        PolicyState::Compliant => "compliant",
        PolicyState::InGracePeriod => "inGracePeriod",
        PolicyState::Noncompliant => "noncompliant",
    }
}

fn setting_state_name(s: SettingState) -> &'static str {
    match s {
        SettingState::Compliant => "compliant",
        SettingState::Noncompliant => "nonCompliant",
        SettingState::NotEvaluated => "notApplicable",
    }
}

fn setting_json(s: &SettingVerdict) -> Value {
    json!({
        "setting": s.setting,
        "state": setting_state_name(s.state),
        "currentValue": s.current_value,
        "reasons": s.reasons,
    })
}

/// Evaluates one device and returns the verdict with the record to store.
pub fn evaluate_one(ctx: &TenantContext, input: &EvaluationInput) -> (Verdict, ComplianceRecord) {
    let device = device_input(input);
    let connectors = connector_inputs(&ctx.connectors, device.platform, ctx.now);
    let episodes: HashMap<String, DateTime<Utc>> = input
        .states
        .iter()
        .filter_map(|s| s.episode_start.map(|t| (s.policy_id.clone(), t)))
        .collect();
    let verdict = evaluate(&device, &ctx.rules, &connectors, ctx.settings, &episodes, ctx.now);
    let version_of = |id: &str| ctx.policies.iter().find(|p| p.id == id).map_or(0, |p| p.version);
    let mut policies: Vec<PolicyStateRow> = verdict
        .policies
        .iter()
        .map(|p| PolicyStateRow {
            device_id: device.id.clone(),
            policy_id: p.policy_id.clone(),
            state: policy_state_name(p.state).into(),
            settings: Value::Array(p.settings.iter().map(setting_json).collect()),
            episode_start: p.episode_start,
            grace_deadline: p.grace_deadline,
            policy_version: version_of(&p.policy_id),
            evaluated_at: ctx.now,
        })
        .collect();
    policies.extend(verdict.not_applicable.iter().map(|id| PolicyStateRow {
        device_id: device.id.clone(),
        policy_id: id.clone(),
        state: "notApplicable".into(),
        settings: Value::Array(vec![]),
        episode_start: None,
        grace_deadline: None,
        policy_version: version_of(id),
        evaluated_at: ctx.now,
    }));
    let partner_threat_state = reported_threat_state(&input.reports, |id| {
        ctx.connectors.iter().any(|c| c.id == id && !c.deprovisioned)
    });
    let record = ComplianceRecord {
        device_id: device.id.clone(),
        state: verdict.state.graph_name().into(),
        grace_expires_at: verdict.grace_expires,
        due_at: verdict.next_change_at,
        partner_threat_state: partner_threat_state.into(),
        evaluated_at: ctx.now,
        policies,
    };
    (verdict, record)
}

/// What of an evaluation's `record` differs from the results stored for the device (read with
/// its inputs): the only rows an evaluation writes. A state row's `evaluated_at` is when it last
/// changed, so a state that is the same is not written again.
pub fn changes(input: &EvaluationInput, record: &ComplianceRecord) -> ComplianceChange {
    let device = &input.device;
    let verdict = (device.compliance_state != record.state
        || device.compliance_grace_expires_at != record.grace_expires_at
        || input.due_at != record.due_at
        || device.partner_threat_state != record.partner_threat_state)
        .then(|| VerdictRow {
            state: record.state.clone(),
            grace_expires_at: record.grace_expires_at,
            due_at: record.due_at,
            partner_threat_state: record.partner_threat_state.clone(),
        });
    let same = |a: &PolicyStateRow, b: &PolicyStateRow| {
        a.state == b.state
            && a.episode_start == b.episode_start
            && a.grace_deadline == b.grace_deadline
            && a.policy_version == b.policy_version
            && a.settings == b.settings
    };
    let upsert = record
        .policies
        .iter()
        .filter(|p| !input.states.iter().any(|s| s.policy_id == p.policy_id && same(s, p)))
        .cloned()
        .collect();
    let delete = input
        .states
        .iter()
        .filter(|s| !record.policies.iter().any(|p| p.policy_id == s.policy_id))
        .map(|s| s.policy_id.clone())
        .collect();
    ComplianceChange {
        device_id: device.id.clone(),
        verdict,
        upsert,
        delete,
    }
}

/// What a re-evaluation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub evaluated: u64,
    /// Devices whose `complianceState` changed.
    pub changed: u64,
    pub actions_fired: u64,
    /// Result rows written (verdicts and policy states).
    pub rows_written: u64,
}

impl Summary {
    pub fn add(&mut self, other: Summary) {
        self.evaluated += other.evaluated;
        self.changed += other.changed;
        self.actions_fired += other.actions_fired;
        self.rows_written += other.rows_written;
    }
}

/// An action for noncompliance of an open episode: when it falls due.
struct PendingAction {
    policy_id: String,
    episode_start: DateTime<Utc>,
    item: crate::domain::policy::ActionItem,
    due: DateTime<Utc>,
}

/// The actions of the device's open episodes that have not fired (block is the state itself).
fn pending_actions(ctx: &TenantContext, input: &EvaluationInput, verdict: &Verdict) -> Vec<PendingAction> {
    if !ctx.actions_enabled {
        return Vec::new();
    }
    let mut out = Vec::new();
    for p in &verdict.policies {
        let Some(t0) = p.episode_start else { continue };
        let Some(stored) = ctx.policies.iter().find(|s| s.id == p.policy_id) else {
            continue;
        };
        for item in stored
            .scheduled_actions
            .iter()
            .flat_map(|r| &r.scheduled_action_configurations)
        {
            if matches!(item.action_type.as_str(), "block" | "noAction") {
                continue;
            }
            let fired = input
                .fired
                .iter()
                .any(|(pid, start, aid)| *pid == p.policy_id && *start == t0 && *aid == item.id);
            if !fired {
                out.push(PendingAction {
                    policy_id: p.policy_id.clone(),
                    episode_start: t0,
                    item: item.clone(),
                    due: t0 + Duration::hours(item.grace_period_hours.max(0)),
                });
            }
        }
    }
    out
}

fn compliance_event(input: &EvaluationInput, record: &ComplianceRecord, now: DateTime<Utc>, cause: &str) -> Event {
    Event {
        kind: "complianceStateChanged".into(),
        device_id: Some(input.device.id.clone()),
        connector_id: None,
        document: json!({
            "kind": "complianceStateChanged",
            "deviceId": input.device.id,
            "from": input.device.compliance_state,
            "to": record.state,
            "complianceGracePeriodExpirationDateTime": time(record.grace_expires_at),
            "policies": record.policies.iter().filter(|p| p.state != "notApplicable").map(|p| json!({
                "policyId": p.policy_id, "state": p.state,
            })).collect::<Vec<_>>(),
            "virtualDateTime": rfc3339(now),
            "cause": cause,
        }),
        virtual_at: now,
    }
}

/// Evaluates the devices with these ids (those that exist) and stores each verdict in one
/// transaction per batch with its event and the actions for noncompliance it makes due.
pub async fn reevaluate_devices(
    store: &dyn Store,
    ctx: &TenantContext,
    tenant_id: &str,
    ids: &[String],
    cause: &Cause,
) -> Result<(Summary, Vec<ComplianceRecord>), StoreError> {
    let mut summary = Summary::default();
    let mut all = Vec::new();
    let cause = cause.describe();
    let mut lookups = ActionLookups::default();
    for chunk in ids.chunks(BATCH as usize) {
        let started = std::time::Instant::now();
        let inputs = store.evaluation_inputs(tenant_id, chunk, ctx.needs_groups()).await?;
        let read = std::time::Instant::now();
        let Batch {
            records,
            evaluated: results,
        } = evaluate_batch(store, ctx, tenant_id, &inputs, &cause, &mut lookups).await?;
        summary.evaluated += inputs.len() as u64;
        let evaluated: Vec<String> = inputs.iter().map(|i| i.device.id.clone()).collect();
        let computed = std::time::Instant::now();
        let stored = store
            .store_compliance(
                tenant_id,
                ctx.version,
                &evaluated,
                &results.changes,
                &results.events,
                &results.actions,
            )
            .await?;
        summary.changed += stored.changed;
        summary.actions_fired += stored.actions_fired;
        summary.rows_written += stored.rows;
        let done = std::time::Instant::now();
        // Where a batch's time goes (`bench/run reevaluate` sums these with LOG=...=debug).
        tracing::debug!(
            devices = chunk.len(),
            read_ms = (read - started).as_secs_f64() * 1e3,
            evaluate_ms = (computed - read).as_secs_f64() * 1e3,
            store_ms = (done - computed).as_secs_f64() * 1e3,
            "evaluation batch"
        );
        all.extend(records);
    }
    Ok((summary, all))
}

/// A batch's evaluation: each device's record, and what to write.
pub(super) struct Batch {
    pub records: Vec<ComplianceRecord>,
    pub evaluated: Evaluated,
}

/// Evaluates a batch of devices: their records, the results that differ from the stored ones,
/// the events of verdicts that changed, and the actions for noncompliance that fall due (those
/// still to come make the verdict due again then).
pub(super) async fn evaluate_batch(
    store: &dyn Store,
    ctx: &TenantContext,
    tenant_id: &str,
    inputs: &[EvaluationInput],
    cause: &str,
    lookups: &mut ActionLookups,
) -> Result<Batch, StoreError> {
    let mut records = Vec::with_capacity(inputs.len());
    let mut out = Evaluated::default();
    for input in inputs {
        let later = ctx.for_device(input);
        let ctx = later.as_ref().unwrap_or(ctx);
        let (verdict, mut record) = evaluate_one(ctx, input);
        // Actions still to come are a change to come too.
        for a in pending_actions(ctx, input, &verdict) {
            if a.due <= ctx.now {
                out.actions
                    .push(prepare_action(store, ctx, tenant_id, &input.device, a, cause, lookups).await?);
            } else {
                record.due_at = Some(record.due_at.map_or(a.due, |d| d.min(a.due)));
            }
        }
        if input.device.compliance_state != record.state {
            out.events.push(compliance_event(input, &record, ctx.now, cause));
        }
        let change = changes(input, &record);
        if !change.is_empty() {
            out.changes.push(change);
        }
        records.push(record);
    }
    Ok(Batch {
        records,
        evaluated: out,
    })
}

/// What preparing a batch's actions reads, read once per batch: templates and the users of
/// CC groups.
#[derive(Default)]
pub(super) struct ActionLookups {
    templates: HashMap<String, Option<crate::domain::policy::NotificationTemplate>>,
    cc: HashMap<String, Vec<String>>,
}

/// Intune's notification tokens, filled from the device and its user.
fn fill_tokens(text: &str, d: &crate::domain::device::ManagedDevice) -> String {
    text.replace("{{UserName}}", d.user_display_name.as_deref().unwrap_or(""))
        .replace("{{DeviceName}}", &d.device_name)
        .replace("{{DeviceId}}", &d.id)
        .replace("{{OSAndVersion}}", &format!("{} {}", d.operating_system, d.os_version))
}

/// An action that falls due: its message or device change and its event, to store with the
/// verdict that makes it due (it fires once per episode).
async fn prepare_action(
    store: &dyn Store,
    ctx: &TenantContext,
    tenant_id: &str,
    device: &crate::domain::device::ManagedDevice,
    a: PendingAction,
    cause: &str,
    lookups: &mut ActionLookups,
) -> Result<FiredAction, StoreError> {
    use crate::service::devices::RemoteAction;
    let policy_name = ctx
        .policies
        .iter()
        .find(|p| p.id == a.policy_id)
        .map(StoredPolicy::display_name)
        .unwrap_or_default();
    let recipient = device
        .email_address
        .clone()
        .or_else(|| device.user_principal_name.clone());
    let mut message = None;
    let mut device_action = None;
    let mut detail = Map::new();
    match a.item.action_type.as_str() {
        "notification" => {
            let template = match &a.item.notification_template_id {
                Some(id) => {
                    let id = id.to_ascii_lowercase();
                    if !lookups.templates.contains_key(&id) {
                        let t = store.get_template(tenant_id, &id).await?;
                        lookups.templates.insert(id.clone(), t);
                    }
                    lookups.templates[&id].clone()
                }
                None => None,
            };
            let mut cc = Vec::new();
            for group in &a.item.notification_message_cc_list {
                let group = group.to_ascii_lowercase();
                if !lookups.cc.contains_key(&group) {
                    let mut addresses = Vec::new();
                    for user_id in store.user_members_of(tenant_id, &group).await? {
                        if let Some(u) = store.get_user(tenant_id, &user_id).await? {
                            addresses.push(u.mail.unwrap_or(u.user_principal_name));
                        }
                    }
                    lookups.cc.insert(group.clone(), addresses);
                }
                cc.extend(lookups.cc[&group].iter().cloned());
            }
            match template.as_ref().and_then(|t| {
                let locale = t.properties.get("defaultLocale").and_then(Value::as_str);
                t.message_for(locale).map(|m| (t, m))
            }) {
                Some((t, m)) => {
                    message = Some((
                        "email".to_string(),
                        json!({
                            "id": uuid::Uuid::new_v4().to_string(),
                            "kind": "email",
                            "test": false,
                            "templateId": t.id,
                            "locale": m.locale,
                            "to": recipient.iter().collect::<Vec<_>>(),
                            "cc": cc,
                            "subject": fill_tokens(&m.subject, device),
                            "body": fill_tokens(&m.message_template, device),
                            "brandingOptions": t.properties.get("brandingOptions").cloned().unwrap_or(Value::Null),
                            "deviceId": device.id,
                            "policyId": a.policy_id,
                            "createdDateTime": rfc3339(ctx.now),
                        }),
                    ));
                }
                None => {
                    detail.insert(
                        "error".into(),
                        "The action names no notification message template with a message: nothing was sent.".into(),
                    );
                }
            }
        }
        "pushNotification" => {
            message = Some((
                "push".to_string(),
                json!({
                    "id": uuid::Uuid::new_v4().to_string(),
                    "kind": "push",
                    "to": recipient,
                    "deviceId": device.id,
                    "policyId": a.policy_id,
                    "message": format!("{} is not compliant with {policy_name}: open the Company Portal to resolve it.", device.device_name),
                    "createdDateTime": rfc3339(ctx.now),
                }),
            ));
        }
        other => {
            // retire, wipe, remoteLock, removeResourceAccessProfiles: a pending device action.
            let state = RemoteAction::parse(other).and_then(RemoteAction::pending_state);
            device_action = Some((other.to_string(), state.map(str::to_string)));
            detail.insert(
                "managementState".into(),
                state.unwrap_or(&device.management_state).into(),
            );
        }
    }
    let mut document = json!({
        "kind": "actionFired",
        "deviceId": device.id,
        "policyId": a.policy_id,
        "actionType": a.item.action_type,
        "actionId": a.item.id,
        "gracePeriodHours": a.item.grace_period_hours,
        "episodeStartDateTime": rfc3339(a.episode_start),
        "dueDateTime": rfc3339(a.due),
        "virtualDateTime": rfc3339(ctx.now),
        "cause": cause,
    });
    if let (Some(m), Some((_, msg))) = (document.as_object_mut(), &message) {
        m.insert("notificationId".into(), msg["id"].clone());
    }
    if let Some(m) = document.as_object_mut() {
        m.extend(detail);
    }
    Ok(FiredAction {
        device_id: device.id.clone(),
        policy_id: a.policy_id.clone(),
        episode_start: a.episode_start,
        action_id: a.item.id.clone(),
        fired_at: ctx.now,
        message,
        device_action,
        event: Event {
            kind: "actionFired".into(),
            device_id: Some(device.id.clone()),
            connector_id: None,
            document,
            virtual_at: ctx.now,
        },
    })
}

/// Evaluates the devices now and sets their stored state on them, for answers that show them.
pub async fn evaluate_now(cx: &Ctx<'_>, devices: &mut [crate::domain::device::ManagedDevice]) -> ServiceResult<()> {
    if devices.is_empty() {
        return Ok(());
    }
    let ctx = load_context(cx.store(), cx.tenant_id, cx.now).await?;
    let ids: Vec<String> = devices.iter().map(|d| d.id.clone()).collect();
    let (_, records) = reevaluate_devices(cx.store(), &ctx, cx.tenant_id, &ids, cx.cause).await?;
    let by_id: HashMap<&str, &ComplianceRecord> = records.iter().map(|r| (r.device_id.as_str(), r)).collect();
    for d in devices.iter_mut() {
        if let Some(r) = by_id.get(d.id.as_str()) {
            d.compliance_state = r.state.clone();
            d.compliance_grace_expires_at = r.grace_expires_at;
        }
    }
    Ok(())
}

/// The devices a change of these connectors (before and after it) can reach: those on the
/// platforms their toggles cover. None when they cover none.
pub fn connectors_scope(connectors: &[&Connector]) -> Option<DeviceScope> {
    let platforms = platforms_of_connectors(connectors);
    (!platforms.is_empty()).then_some(DeviceScope::Platforms(platforms))
}

/// The platforms (`managedDevice` families) a policy family applies to.
pub fn platforms_of(policies: &[&StoredPolicy]) -> Vec<String> {
    let mut out: Vec<String> = policies
        .iter()
        .map(|p| p.family.platform().as_str().to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The platforms a connector's toggles cover, before and after a change.
pub fn platforms_of_connectors(connectors: &[&Connector]) -> Vec<String> {
    let mut out = Vec::new();
    for c in connectors {
        let t = c.toggles();
        for p in crate::domain::device::PLATFORMS {
            if t.covers(*p) {
                out.push(p.as_str().to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn time(t: Option<DateTime<Utc>>) -> Value {
    t.map(|t| Value::String(rfc3339(t))).unwrap_or(Value::Null)
}

/// The full trace of a device's evaluation at `now`: inputs, every policy and setting with its
/// reasons, and the verdict, the same computation whose result the Graph views show.
pub fn explain(ctx: &TenantContext, input: &EvaluationInput) -> Value {
    let (verdict, _) = evaluate_one(ctx, input);
    let d = &input.device;
    let connectors = connector_inputs(&ctx.connectors, d.platform, ctx.now);
    let connectors_json: Vec<Value> = ctx
        .connectors
        .iter()
        .zip(&connectors)
        .map(|(c, i)| {
            let report = input
                .reports
                .iter()
                .find(|r| r.connector_id == c.id)
                .map(|r| r.state.clone());
            json!({
                "id": c.id,
                "partnerState": partner_state(&c.status(), ctx.now),
                "lastHeartbeatDateTime": time(c.last_heartbeat_at),
                "enabledForPlatform": i.toggles.covers(d.platform),
                "usable": i.usable,
                "blockedOnMissingPartnerData": i.blocked_on_missing_data,
                "partnerUnsupportedOsVersionBlocked": i.unsupported_os_blocked,
                "partnerMinimumSupportedOsVersion": i.minimum_os_version,
                "deviceReport": report,
            })
        })
        .collect();
    let policies: Vec<Value> = verdict
        .policies
        .iter()
        .map(|p| {
            let stored = ctx.policies.iter().find(|s| s.id == p.policy_id);
            json!({
                "policyId": p.policy_id,
                "displayName": stored.map(StoredPolicy::display_name),
                "@odata.type": stored.map(|s| format!("#microsoft.graph.{}", s.family.odata_type())),
                "version": stored.map(|s| s.version),
                "applicable": true,
                "state": policy_state_name(p.state),
                "episodeStartDateTime": time(p.episode_start),
                "gracePeriodExpirationDateTime": time(p.grace_deadline),
                "settings": p.settings.iter().map(setting_json).collect::<Vec<_>>(),
            })
        })
        .chain(verdict.not_applicable.iter().map(|id| {
            let stored = ctx.policies.iter().find(|s| &s.id == id);
            json!({
                "policyId": id,
                "displayName": stored.map(StoredPolicy::display_name),
                "@odata.type": stored.map(|s| format!("#microsoft.graph.{}", s.family.odata_type())),
                "version": stored.map(|s| s.version),
                "applicable": false,
                "state": "notApplicable",
                "reasons": [format!(
                    "The policy is assigned to the device or its user but is for another platform than {}.",
                    d.platform.as_str()
                )],
            })
        }))
        .collect();
    let mut device = Map::new();
    device.insert("id".into(), d.id.clone().into());
    device.insert("platform".into(), d.platform.as_str().into());
    device.insert("osVersion".into(), d.os_version.clone().into());
    device.insert("userId".into(), json!(d.user_id));
    device.insert("lastSyncDateTime".into(), rfc3339(d.last_sync_at).into());
    device.insert("userGroups".into(), json!(input.user_groups));
    device.insert("deviceGroups".into(), json!(input.device_groups));
    json!({
        "evaluatedAt": rfc3339(ctx.now),
        "device": device,
        "settings": {
            "secureByDefault": ctx.settings.secure_by_default,
            "deviceComplianceCheckinThresholdDays": ctx.settings.checkin_threshold_days,
        },
        "connectors": connectors_json,
        "policies": policies,
        "verdict": {
            "complianceState": verdict.state.graph_name(),
            "complianceGracePeriodExpirationDateTime": time(verdict.grace_expires),
            "reasons": verdict.reasons,
            "nextChangeDateTime": time(verdict.next_change_at),
        },
        "stored": {
            "complianceState": d.compliance_state,
            "complianceGracePeriodExpirationDateTime": time(d.compliance_grace_expires_at),
            "agrees": d.compliance_state == verdict.state.graph_name(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::device::OwnerType;
    use crate::service::devices::{enroll, Enrollment};

    fn state(policy: &str, state: &str, at: DateTime<Utc>) -> PolicyStateRow {
        PolicyStateRow {
            device_id: "d1".into(),
            policy_id: policy.into(),
            state: state.into(),
            settings: json!([{ "setting": "osMinimumVersion", "state": state }]),
            episode_start: None,
            grace_deadline: None,
            policy_version: 1,
            evaluated_at: at,
        }
    }

    /// A device as stored (verdict and states) and the record of an evaluation that found the same.
    fn stored(at: DateTime<Utc>) -> (EvaluationInput, ComplianceRecord) {
        let e = Enrollment {
            device_name: "d".into(),
            operating_system: "iOS".into(),
            os_version: "17.1".into(),
            owner_type: Some(OwnerType::Company),
            ..Default::default()
        };
        let mut device = enroll("t", e, None, at);
        device.id = "d1".into();
        device.compliance_state = "compliant".into();
        let due = Some(at + Duration::days(30));
        let input = EvaluationInput {
            device,
            user_groups: vec![],
            device_groups: vec![],
            reports: vec![],
            due_at: due,
            states: vec![state("a", "compliant", at), state("b", "notApplicable", at)],
            fired: vec![],
        };
        let later = at + Duration::hours(1);
        let record = ComplianceRecord {
            device_id: "d1".into(),
            state: "compliant".into(),
            grace_expires_at: None,
            due_at: due,
            partner_threat_state: "unknown".into(),
            evaluated_at: later,
            policies: vec![state("a", "compliant", later), state("b", "notApplicable", later)],
        };
        (input, record)
    }

    #[test]
    fn a_device_evaluated_later_is_evaluated_at_that_time() {
        let now = Utc::now();
        let rows = TenantRows {
            version: 1,
            policies: vec![],
            connectors: vec![],
            device_management: None,
        };
        let ctx = TenantContext::new(rows, now);
        let (mut input, _) = stored(now - Duration::hours(1));
        assert!(
            ctx.for_device(&input).is_none(),
            "results from before now change nothing"
        );
        let later = now + Duration::seconds(2);
        input.states[1].evaluated_at = later;
        let at = ctx.for_device(&input).expect("a later evaluation's time");
        assert_eq!((at.now, at.version), (later, ctx.version));
    }

    #[test]
    fn the_same_results_later_are_no_change() {
        let (input, record) = stored(Utc::now());
        assert!(changes(&input, &record).is_empty());
    }

    #[test]
    fn only_what_differs_is_written() {
        let (input, mut record) = stored(Utc::now());
        record.policies[0] = state("a", "noncompliant", record.evaluated_at);
        record.state = "noncompliant".into();
        let c = changes(&input, &record);
        let verdict = |state: &str, due_at| VerdictRow {
            state: state.into(),
            grace_expires_at: None,
            due_at,
            partner_threat_state: "unknown".into(),
        };
        assert_eq!(c.verdict, Some(verdict("noncompliant", input.due_at)));
        assert_eq!(c.upsert, vec![record.policies[0].clone()]);
        assert!(c.delete.is_empty());

        // A due time alone is a change of the verdict row; a new policy version of a state too.
        let (input, mut record) = stored(Utc::now());
        record.due_at = None;
        record.policies[1].policy_version = 2;
        let c = changes(&input, &record);
        assert_eq!(c.verdict, Some(verdict("compliant", None)));
        assert_eq!(c.upsert.len(), 1);
        assert_eq!(c.upsert[0].policy_id, "b");
    }

    #[test]
    fn states_of_policies_gone_are_deleted_and_new_ones_inserted() {
        let (input, mut record) = stored(Utc::now());
        record.policies = vec![
            state("a", "compliant", record.evaluated_at),
            state("c", "compliant", record.evaluated_at),
        ];
        let c = changes(&input, &record);
        assert_eq!(c.verdict, None);
        assert_eq!(c.delete, vec!["b".to_string()]);
        assert_eq!(
            c.upsert.iter().map(|s| s.policy_id.as_str()).collect::<Vec<_>>(),
            vec!["c"]
        );
    }
}
