//! Notification message templates: the emails `notification` actions for noncompliance send,
//! their localized messages (a locale once, one default), and `sendTestMessage`.

use serde_json::{json, Map, Value};

use super::clock::rfc3339;
use super::{Ctx, ServiceError, ServiceResult};
use crate::domain::policy::{LocalizedMessage, NotificationTemplate};
use crate::schema::merge_patch;

pub fn not_found(id: &str) -> ServiceError {
    ServiceError::not_found(format!("The notification message template '{id}' does not exist."))
}

fn message_not_found(id: &str) -> ServiceError {
    ServiceError::not_found(format!("The localized notification message '{id}' does not exist."))
}

/// A template by id (any case).
pub async fn get(cx: &Ctx<'_>, id: &str) -> ServiceResult<NotificationTemplate> {
    cx.store()
        .get_template(cx.tenant_id, &id.to_ascii_lowercase())
        .await?
        .ok_or_else(|| not_found(id))
}

pub async fn list(cx: &Ctx<'_>) -> ServiceResult<Vec<NotificationTemplate>> {
    Ok(cx.store().list_templates(cx.tenant_id).await?)
}

/// One localized message: the template's id and the message.
pub async fn message(cx: &Ctx<'_>, id: &str, message_id: &str) -> ServiceResult<(String, LocalizedMessage)> {
    let t = get(cx, id).await?;
    let m = t
        .messages
        .into_iter()
        .find(|m| m.id.eq_ignore_ascii_case(message_id))
        .ok_or_else(|| message_not_found(message_id))?;
    Ok((t.id, m))
}

/// Adds a message: a locale appears once; a new default takes the flag from the others.
fn add_message(t: &mut NotificationTemplate, m: LocalizedMessage) -> ServiceResult<()> {
    if t.messages.iter().any(|x| x.locale.eq_ignore_ascii_case(&m.locale)) {
        return Err(ServiceError::conflict(format!(
            "The template already has a message for the locale '{}'.",
            m.locale
        )));
    }
    if m.is_default {
        t.messages.iter_mut().for_each(|x| x.is_default = false);
    }
    t.messages.push(m);
    Ok(())
}

/// Creates a template with its validated properties and the `messages` of the body; a
/// message's id derives from the template's, so `parse` reads each one as it is added.
pub async fn create<F, E>(
    cx: &Ctx<'_>,
    mut properties: Map<String, Value>,
    messages: &[Value],
    parse: F,
) -> Result<NotificationTemplate, E>
where
    F: Fn(&str, &Value) -> Result<LocalizedMessage, E>,
    E: From<ServiceError>,
{
    properties
        .entry("brandingOptions")
        .or_insert_with(|| Value::String("none".into()));
    let mut t = NotificationTemplate {
        tenant_id: cx.tenant_id.to_string(),
        id: uuid::Uuid::new_v4().to_string(),
        properties,
        messages: Vec::new(),
        created_at: cx.now,
        last_modified_at: cx.now,
        revision: 0,
    };
    for m in messages {
        let parsed = parse(&t.id, m)?;
        add_message(&mut t, parsed)?;
    }
    cx.store().insert_template(&t).await.map_err(ServiceError::from)?;
    Ok(t)
}

/// Merges validated properties into the template.
pub async fn patch(cx: &Ctx<'_>, id: &str, properties: Map<String, Value>) -> ServiceResult<()> {
    update(cx, id, |t| {
        merge_patch(&mut t.properties, properties.clone());
        Ok(())
    })
    .await?;
    Ok(())
}

pub async fn delete(cx: &Ctx<'_>, id: &str) -> ServiceResult<()> {
    let t = get(cx, id).await?;
    if cx.store().delete_template(cx.tenant_id, &t.id).await? {
        Ok(())
    } else {
        Err(not_found(id))
    }
}

/// Adds a localized message (`parse` reads it once the template is found); returns the
/// template's id and the message as stored.
pub async fn add<F, E>(cx: &Ctx<'_>, id: &str, parse: F) -> Result<(String, LocalizedMessage), E>
where
    F: FnOnce(&str) -> Result<LocalizedMessage, E>,
    E: From<ServiceError>,
{
    let current = get(cx, id).await?;
    let parsed = parse(&current.id)?;
    let t = update(cx, id, |t| add_message(t, parsed.clone())).await?;
    let m = t.messages.into_iter().find(|m| m.id == parsed.id).unwrap_or(parsed);
    Ok((t.id, m))
}

/// A validated change of a localized message.
#[derive(Debug, Clone, Default)]
pub struct MessagePatch {
    pub subject: Option<String>,
    pub message_template: Option<String>,
    /// Makes it the default message (the others lose the flag).
    pub make_default: bool,
}

pub async fn patch_message(cx: &Ctx<'_>, id: &str, message_id: &str, change: MessagePatch) -> ServiceResult<()> {
    update(cx, id, |t| {
        let i = t
            .messages
            .iter()
            .position(|m| m.id.eq_ignore_ascii_case(message_id))
            .ok_or_else(|| message_not_found(message_id))?;
        if change.make_default {
            t.messages.iter_mut().for_each(|m| m.is_default = false);
            t.messages[i].is_default = true;
        }
        let m = &mut t.messages[i];
        if let Some(s) = &change.subject {
            m.subject = s.clone();
        }
        if let Some(s) = &change.message_template {
            m.message_template = s.clone();
        }
        m.last_modified_date_time = cx.now;
        Ok(())
    })
    .await?;
    Ok(())
}

pub async fn delete_message(cx: &Ctx<'_>, id: &str, message_id: &str) -> ServiceResult<()> {
    update(cx, id, |t| {
        let before = t.messages.len();
        t.messages.retain(|m| !m.id.eq_ignore_ascii_case(message_id));
        if t.messages.len() == before {
            return Err(message_not_found(message_id));
        }
        Ok(())
    })
    .await?;
    Ok(())
}

/// Sends the template's default message to the signed-in user `user_id` (app-only callers,
/// `None`, have no mailbox: the message is written to the outbox with no recipient).
pub async fn send_test_message(cx: &Ctx<'_>, id: &str, user_id: Option<&str>) -> ServiceResult<()> {
    let t = get(cx, id).await?;
    let message = t
        .message_for(None)
        .ok_or_else(|| ServiceError::invalid("The notification message template has no localized message to send."))?;
    let to: Vec<Value> = match user_id {
        Some(oid) => cx
            .store()
            .get_user(cx.tenant_id, oid)
            .await?
            .map(|u| vec![Value::String(u.mail.unwrap_or(u.user_principal_name))])
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let document = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "kind": "email",
        "test": true,
        "templateId": t.id,
        "locale": message.locale,
        "to": to,
        "cc": [],
        "subject": message.subject,
        "body": message.message_template,
        "brandingOptions": t.properties.get("brandingOptions").cloned().unwrap_or(Value::Null),
        "createdDateTime": rfc3339(cx.now),
    });
    cx.store()
        .insert_notification(cx.tenant_id, "email", &document, cx.now)
        .await?;
    Ok(())
}

/// Applies `change` with compare-and-set, moving `lastModifiedDateTime`.
async fn update<F>(cx: &Ctx<'_>, id: &str, change: F) -> ServiceResult<NotificationTemplate>
where
    F: Fn(&mut NotificationTemplate) -> ServiceResult<()>,
{
    loop {
        let mut t = get(cx, id).await?;
        change(&mut t)?;
        t.last_modified_at = cx.now.max(t.last_modified_at);
        if cx.store().update_template(&t).await? {
            return Ok(t);
        }
    }
}
