//! Fault rules as a tenant sets them (`/_emulator/tenants/{tid}/faults`), and the check each
//! Graph and partner request of a tenant with rules goes through: the first rule that applies
//! and fires decides what the request gets; it is logged in the event log (`requestFaulted`)
//! and counted on `/metrics`. A tenant without rules costs nothing: its rules come with the
//! cached tenant.

use serde_json::{json, Map, Value};

use super::{App, Cause, ServiceError, ServiceResult};
use crate::domain::faults::{FaultRule, Incoming, Surface, DEFAULT_RETRY_AFTER_S, DEFAULT_RULE_HEADER, MAX_RULES};
use crate::domain::limits::Bucket;
use crate::domain::time::rfc3339;
use crate::store::Event;

/// A rule with its counters: the requests it matched and the times it fired.
#[derive(Debug, Clone)]
pub struct RuleState {
    pub rule: FaultRule,
    pub matched: i64,
    pub fired: i64,
}

impl RuleState {
    /// The rule's document: its settings, its counters, and how many more times it may fire.
    pub fn document(&self) -> Value {
        let mut doc = serde_json::to_value(&self.rule).unwrap_or_default();
        if let Some(m) = doc.as_object_mut() {
            m.insert("matched".into(), self.matched.into());
            m.insert("fired".into(), self.fired.into());
            m.insert(
                "remaining".into(),
                self.rule.count.map(|c| (c - self.fired).max(0)).into(),
            );
        }
        doc
    }
}

/// What the server sets, never a client.
const READ_ONLY: [&str; 5] = ["id", "createdDateTime", "matched", "fired", "remaining"];

fn not_found(tenant_id: &str, rule_id: &str) -> ServiceError {
    ServiceError::NotFound(format!("Tenant '{tenant_id}' has no fault rule '{rule_id}'."))
}

/// The tenant's rules with their counters, in the order they are tried.
pub async fn list(app: &App, tenant_id: &str) -> ServiceResult<Vec<RuleState>> {
    let tenant = super::tenants::get(app, tenant_id).await?;
    let counts = app.store.fault_counts(tenant_id).await?;
    Ok(tenant
        .faults
        .into_iter()
        .map(|rule| {
            let (matched, fired) = counts
                .iter()
                .find(|(id, ..)| *id == rule.id)
                .map(|(_, m, f)| (*m, *f))
                .unwrap_or((0, 0));
            RuleState { rule, matched, fired }
        })
        .collect())
}

pub async fn get(app: &App, tenant_id: &str, rule_id: &str) -> ServiceResult<RuleState> {
    list(app, tenant_id)
        .await?
        .into_iter()
        .find(|r| r.rule.id == rule_id)
        .ok_or_else(|| not_found(tenant_id, rule_id))
}

/// Adds a rule from a client's document; its `seed` is drawn when not given (and shown, so the
/// run can be repeated). Tried after the rules already there.
pub async fn create(app: &App, tenant_id: &str, mut input: Map<String, Value>) -> ServiceResult<RuleState> {
    for key in READ_ONLY {
        input.remove(key);
    }
    let id = uuid::Uuid::new_v4().to_string();
    let seed = rand::random::<u32>();
    let status = input.get("status").and_then(Value::as_u64);
    if matches!(status, Some(429 | 503)) && !input.contains_key("retryAfterSeconds") {
        input.insert("retryAfterSeconds".into(), DEFAULT_RETRY_AFTER_S.into());
    }
    let mut created = None;
    modify(app, tenant_id, |rules, now| {
        if rules.len() >= MAX_RULES {
            return Err(ServiceError::invalid(format!(
                "A tenant has at most {MAX_RULES} fault rules."
            )));
        }
        let mut doc = json!({
            "id": id,
            "probability": 1.0,
            "seed": seed,
            "enabled": true,
            "ruleHeader": DEFAULT_RULE_HEADER,
            "createdDateTime": rfc3339(now),
        });
        if let Some(m) = doc.as_object_mut() {
            m.extend(input.clone());
        }
        let rule = decode(doc)?;
        rules.push(rule.clone());
        created = Some(rule);
        Ok(Vec::new())
    })
    .await?;
    let rule = created.ok_or_else(|| not_found(tenant_id, &id))?;
    Ok(RuleState {
        rule,
        matched: 0,
        fired: 0,
    })
}

/// Merges a client's changes into a rule (JSON merge patch: `null` clears); its counters start
/// afresh, so a rule that has fired its `count` can be armed again.
pub async fn update(
    app: &App,
    tenant_id: &str,
    rule_id: &str,
    mut patch: Map<String, Value>,
) -> ServiceResult<RuleState> {
    for key in READ_ONLY {
        patch.remove(key);
    }
    let mut updated = None;
    modify(app, tenant_id, |rules, _| {
        let rule = rules
            .iter_mut()
            .find(|r| r.id == rule_id)
            .ok_or_else(|| not_found(tenant_id, rule_id))?;
        let mut doc = serde_json::to_value(&*rule).map_err(|e| ServiceError::invalid(e.to_string()))?;
        merge(&mut doc, Value::Object(patch.clone()));
        *rule = decode(doc)?;
        updated = Some(rule.clone());
        Ok(vec![rule_id.to_string()])
    })
    .await?;
    let rule = updated.ok_or_else(|| not_found(tenant_id, rule_id))?;
    Ok(RuleState {
        rule,
        matched: 0,
        fired: 0,
    })
}

/// Deletes a rule, or every rule (`None`).
pub async fn delete(app: &App, tenant_id: &str, rule_id: Option<&str>) -> ServiceResult<()> {
    modify(app, tenant_id, |rules, _| {
        let gone: Vec<String> = match rule_id {
            Some(id) => {
                if !rules.iter().any(|r| r.id == id) {
                    return Err(not_found(tenant_id, id));
                }
                vec![id.to_string()]
            }
            None => rules.iter().map(|r| r.id.clone()).collect(),
        };
        rules.retain(|r| !gone.contains(&r.id));
        Ok(gone)
    })
    .await
}

/// A rule from its full document, checked.
fn decode(doc: Value) -> ServiceResult<FaultRule> {
    let rule: FaultRule =
        serde_json::from_value(doc).map_err(|e| ServiceError::invalid(format!("Invalid fault rule: {e}.")))?;
    rule.validate().map_err(ServiceError::invalid)?;
    Ok(rule)
}

/// RFC 7396: objects merge, `null` removes, anything else replaces.
fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.insert(k, Value::Null);
                } else {
                    merge(t.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p,
    }
}

/// Changes the tenant's rules with `change` (given them and the tenant's now; it returns the
/// rules whose counters start afresh), compare-and-set on the tenant's cache version, trying
/// again when another write moved it.
async fn modify(
    app: &App,
    tenant_id: &str,
    mut change: impl FnMut(&mut Vec<FaultRule>, chrono::DateTime<chrono::Utc>) -> ServiceResult<Vec<String>>,
) -> ServiceResult<()> {
    for _ in 0..20 {
        let Some((tenant, version)) = app.store.get_tenant_versioned(tenant_id).await? else {
            return Err(super::tenants::tenant_not_found(tenant_id));
        };
        let now = crate::clock::tenant_now(app.clock().wall_now(), tenant.clock_offset_us);
        let mut rules = tenant.faults;
        let afresh = change(&mut rules, now)?;
        if app.store.replace_faults(tenant_id, version, &rules, &afresh).await? {
            return Ok(());
        }
    }
    Err(ServiceError::Busy(
        "The tenant kept changing while its fault rules were written. Retry the request.".into(),
    ))
}

/// What a request carries that the event log records.
pub struct Request<'a> {
    /// The request's path as sent.
    pub path: &'a str,
    /// The `Retry-Attempt` header a client's retry handler sends (Kiota's).
    pub retry_attempt: Option<&'a str>,
    pub cause: &'a Cause,
}

/// A rule that fired on a request, and the latency it adds.
#[derive(Debug, Clone)]
pub struct Fired {
    pub rule: FaultRule,
    pub latency_ms: u32,
}

/// The first of the tenant's rules that applies to the request and fires on it, counted; none
/// when no rule does.
pub async fn check(
    app: &App,
    tenant: &crate::domain::tenant::Tenant,
    incoming: Incoming<'_>,
    request: Request<'_>,
) -> ServiceResult<Option<Fired>> {
    for rule in &tenant.faults {
        if !rule.applies_to(&incoming) {
            continue;
        }
        let n = app.store.fault_matched(&tenant.id, &rule.id).await?;
        if !rule.fires_on(n) || !app.store.fault_fired(&tenant.id, &rule.id, rule.count).await? {
            continue;
        }
        let latency_ms = rule.latency_on(n);
        let bucket = match incoming.surface {
            Surface::Partner => "partner",
            Surface::Graph => Bucket::of_route(incoming.route).map(Bucket::as_str).unwrap_or("none"),
        };
        metrics::counter!(
            "faulted_requests_total",
            "tenant" => tenant.id.clone(),
            "rule" => rule.id.clone(),
            "bucket" => bucket,
        )
        .increment(1);
        let event = Event {
            kind: "requestFaulted".into(),
            device_id: None,
            connector_id: None,
            document: json!({
                "kind": "requestFaulted",
                "ruleId": rule.id,
                "displayName": rule.display_name,
                "effect": rule.effect(),
                "status": rule.status,
                "latencyMs": latency_ms,
                "matched": n,
                "method": incoming.method,
                "route": incoming.route,
                "path": request.path,
                "appId": incoming.app_id,
                "userId": incoming.user_id,
                "retryAttempt": request.retry_attempt,
                "virtualDateTime": rfc3339(incoming.now),
                "cause": request.cause.describe(),
            }),
            virtual_at: incoming.now,
        };
        app.store.append_events(&tenant.id, &[event]).await?;
        return Ok(Some(Fired {
            rule: rule.clone(),
            latency_ms,
        }));
    }
    Ok(None)
}
