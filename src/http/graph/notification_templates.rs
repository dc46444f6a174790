//! `/deviceManagement/notificationMessageTemplates`: the email templates `notification` actions
//! for noncompliance send, with their localized messages and `sendTestMessage`.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};

use super::{graph_json, memory, with_context, GraphCtx};
use crate::domain::permissions::GraphPermission;
use crate::domain::policy::{canonical_branding, localized_message_id, LocalizedMessage, NotificationTemplate};
use crate::domain::rbac::RoleRequirement::Intune;
use crate::http::auth::GraphCaller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{JsonBody, OData};
use crate::http::routes::{Access, RouteTable};
use crate::http::AppState;
use crate::odata::QueryOptions;
use crate::schema::compliance::{LOCALIZED_NOTIFICATION_MESSAGE, NOTIFICATION_MESSAGE_TEMPLATE};
use crate::schema::{render, validate_patch};
use crate::service::clock::rfc3339;
use crate::service::templates::{self, MessagePatch};

const READ: GraphPermission = GraphPermission {
    any_of: &[
        "DeviceManagementServiceConfig.Read.All",
        "DeviceManagementServiceConfig.ReadWrite.All",
    ],
};
const WRITE: GraphPermission = GraphPermission {
    any_of: &["DeviceManagementServiceConfig.ReadWrite.All"],
};

const PATH: &str = "/deviceManagement/notificationMessageTemplates";
const ITEM: &str = "/deviceManagement/notificationMessageTemplates/{templateId}";
const MESSAGES: &str = "/deviceManagement/notificationMessageTemplates/{templateId}/localizedNotificationMessages";
const MESSAGE: &str =
    "/deviceManagement/notificationMessageTemplates/{templateId}/localizedNotificationMessages/{messageId}";

pub fn routes(t: &mut RouteTable) {
    t.route(
        Method::GET,
        PATH,
        Access::Graph(READ, Intune("Microsoft.Intune_DeviceCompliancePolices_Read")),
        list,
    )
    .route(
        Method::POST,
        PATH,
        Access::Graph(WRITE, Intune("Microsoft.Intune_DeviceCompliancePolices_Create")),
        create,
    )
    .route(
        Method::GET,
        ITEM,
        Access::Graph(READ, Intune("Microsoft.Intune_DeviceCompliancePolices_Read")),
        get,
    )
    .route(
        Method::PATCH,
        ITEM,
        Access::Graph(WRITE, Intune("Microsoft.Intune_DeviceCompliancePolices_Update")),
        patch,
    )
    .route(
        Method::DELETE,
        ITEM,
        Access::Graph(WRITE, Intune("Microsoft.Intune_DeviceCompliancePolices_Delete")),
        delete,
    )
    .route(
        Method::POST,
        "/deviceManagement/notificationMessageTemplates/{templateId}/sendTestMessage",
        Access::Graph(WRITE, Intune("Microsoft.Intune_DeviceCompliancePolices_Update")),
        send_test_message,
    )
    .route(
        Method::GET,
        MESSAGES,
        Access::Graph(READ, Intune("Microsoft.Intune_DeviceCompliancePolices_Read")),
        list_messages,
    )
    .route(
        Method::POST,
        MESSAGES,
        Access::Graph(WRITE, Intune("Microsoft.Intune_DeviceCompliancePolices_Update")),
        create_message,
    )
    .route(
        Method::GET,
        MESSAGE,
        Access::Graph(READ, Intune("Microsoft.Intune_DeviceCompliancePolices_Read")),
        get_message,
    )
    .route(
        Method::PATCH,
        MESSAGE,
        Access::Graph(WRITE, Intune("Microsoft.Intune_DeviceCompliancePolices_Update")),
        patch_message,
    )
    .route(
        Method::DELETE,
        MESSAGE,
        Access::Graph(WRITE, Intune("Microsoft.Intune_DeviceCompliancePolices_Update")),
        delete_message,
    );
}

fn template_doc(t: &NotificationTemplate, ctx: &GraphCtx) -> Map<String, Value> {
    let mut m = t.properties.clone();
    m.insert("id".into(), t.id.clone().into());
    m.insert("lastModifiedDateTime".into(), rfc3339(t.last_modified_at).into());
    render(&NOTIFICATION_MESSAGE_TEMPLATE, &m, ctx.view)
}

fn message_doc(msg: &LocalizedMessage, ctx: &GraphCtx) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), msg.id.clone().into());
    m.insert("isDefault".into(), msg.is_default.into());
    m.insert(
        "lastModifiedDateTime".into(),
        rfc3339(msg.last_modified_date_time).into(),
    );
    m.insert("locale".into(), msg.locale.clone().into());
    m.insert("messageTemplate".into(), msg.message_template.clone().into());
    m.insert("subject".into(), msg.subject.clone().into());
    render(&LOCALIZED_NOTIFICATION_MESSAGE, &m, ctx.view)
}

/// Validates a template body; `brandingOptions` is a flags enum kept in canonical form.
fn template_props(body: &Value, ctx: &GraphCtx) -> ApiResult<Map<String, Value>> {
    let mut props =
        validate_patch(&NOTIFICATION_MESSAGE_TEMPLATE, body, ctx.version).map_err(|e| ApiError::bad_request(e.0))?;
    if let Some(v) = props.get("brandingOptions").cloned() {
        let text = v.as_str().unwrap_or("none");
        let canonical = canonical_branding(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "The value '{text}' is not a valid member of enum type 'microsoft.graph.notificationTemplateBrandingOptions' for property 'brandingOptions'."
            ))
        })?;
        props.insert("brandingOptions".into(), canonical.into());
    }
    props.remove("lastModifiedDateTime");
    Ok(props)
}

fn split_messages(body: &Value) -> ApiResult<(Value, Option<Value>)> {
    let Value::Object(fields) = body else {
        return Err(ApiError::bad_request(
            "A request body of type 'microsoft.graph.notificationMessageTemplate' is required.",
        ));
    };
    let mut rest = fields.clone();
    let messages = rest.remove("localizedNotificationMessages");
    Ok((Value::Object(rest), messages))
}

fn respond_list(
    q: &QueryOptions,
    docs: Vec<Map<String, Value>>,
    type_name: &str,
    context: String,
) -> ApiResult<Response> {
    memory::page(q, docs, type_name, context)
}

fn expand_messages(
    t: &NotificationTemplate,
    q: &QueryOptions,
    ctx: &GraphCtx,
    doc: &mut Map<String, Value>,
) -> ApiResult<()> {
    for e in &q.expand {
        if !e.property.eq_ignore_ascii_case("localizedNotificationMessages") {
            return Err(ApiError::bad_request(format!(
                "Could not find a navigation property named '{}' on type 'microsoft.graph.notificationMessageTemplate' that can be expanded.",
                e.property
            )));
        }
        doc.insert(
            "localizedNotificationMessages".into(),
            Value::Array(t.messages.iter().map(|m| Value::Object(message_doc(m, ctx))).collect()),
        );
    }
    Ok(())
}

async fn list(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let templates = templates::list(&caller.cx(&state.app)).await?;
    let mut docs = Vec::with_capacity(templates.len());
    for t in &templates {
        let mut d = template_doc(t, &ctx);
        expand_messages(t, &q, &ctx, &mut d)?;
        docs.push(d);
    }
    respond_list(
        &q,
        docs,
        "notificationMessageTemplate",
        ctx.context("deviceManagement/notificationMessageTemplates", None),
    )
}

async fn get(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    super::reject_collection_options(&q)?;
    let t = templates::get(&caller.cx(&state.app), &id).await?;
    let mut doc = template_doc(&t, &ctx);
    expand_messages(&t, &q, &ctx, &mut doc)?;
    let doc = super::apply_select(doc, &NOTIFICATION_MESSAGE_TEMPLATE, q.select.as_ref(), ctx.version)?;
    let context = ctx.context(
        "deviceManagement/notificationMessageTemplates/$entity",
        q.select.as_deref(),
    );
    Ok(graph_json(StatusCode::OK, with_context(context, doc)))
}

/// A `localizedNotificationMessage` of a request body, as created.
fn parse_message(
    template_id: &str,
    body: &Value,
    ctx: &GraphCtx,
    now: chrono::DateTime<chrono::Utc>,
) -> ApiResult<LocalizedMessage> {
    let props =
        validate_patch(&LOCALIZED_NOTIFICATION_MESSAGE, body, ctx.version).map_err(|e| ApiError::bad_request(e.0))?;
    let text = |name: &str| -> ApiResult<String> {
        props
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
            .ok_or_else(|| ApiError::bad_request(format!("The property '{name}' is required.")))
    };
    let locale = text("locale")?;
    Ok(LocalizedMessage {
        id: localized_message_id(template_id, &locale),
        locale: locale.to_ascii_lowercase(),
        subject: text("subject")?,
        message_template: text("messageTemplate")?,
        is_default: props.get("isDefault").and_then(Value::as_bool).unwrap_or(false),
        last_modified_date_time: now,
    })
}

async fn create(
    caller: GraphCaller,
    ctx: GraphCtx,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let (rest, messages) = split_messages(&body)?;
    let props = template_props(&rest, &ctx)?;
    if props
        .get("displayName")
        .and_then(Value::as_str)
        .is_none_or(|s| s.trim().is_empty())
    {
        return Err(ApiError::bad_request("The property 'displayName' is required."));
    }
    let items = match &messages {
        Some(messages) => messages
            .as_array()
            .ok_or_else(|| ApiError::bad_request("The property 'localizedNotificationMessages' must be an array."))?
            .as_slice(),
        None => &[],
    };
    let t = templates::create(&caller.cx(&state.app), props, items, |template_id, m| {
        parse_message(template_id, m, &ctx, caller.now)
    })
    .await?;
    let context = ctx.context("deviceManagement/notificationMessageTemplates/$entity", None);
    Ok(graph_json(
        StatusCode::CREATED,
        with_context(context, template_doc(&t, &ctx)),
    ))
}

async fn patch(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let (rest, messages) = split_messages(&body)?;
    if messages.is_some() {
        return Err(ApiError::bad_request(
            "The navigation property 'localizedNotificationMessages' cannot be written with PATCH: use its own path.",
        ));
    }
    let props = template_props(&rest, &ctx)?;
    if props
        .get("displayName")
        .is_some_and(|v| v.as_str().is_none_or(|s| s.trim().is_empty()))
    {
        return Err(ApiError::bad_request("The property 'displayName' cannot be empty."));
    }
    templates::patch(&caller.cx(&state.app), &id, props).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(caller: GraphCaller, Path(id): Path<String>, State(state): State<AppState>) -> ApiResult<StatusCode> {
    templates::delete(&caller.cx(&state.app), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends the template's default message to the signed-in admin (app-only callers have no
/// mailbox: the message is written to the outbox with no recipient).
async fn send_test_message(
    caller: GraphCaller,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    if !(body.is_null() || body.as_object().is_some_and(Map::is_empty)) {
        return Err(ApiError::bad_request(
            "The action 'sendTestMessage' takes no parameters.",
        ));
    }
    // Only a signed-in user has a mailbox to send the test to.
    let user = (caller.claims.idtyp == "user").then_some(caller.claims.oid.as_str());
    templates::send_test_message(&caller.cx(&state.app), &id, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_messages(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    super::reject_expand(&q, "localizedNotificationMessage")?;
    let t = templates::get(&caller.cx(&state.app), &id).await?;
    let docs = t.messages.iter().map(|m| message_doc(m, &ctx)).collect();
    respond_list(
        &q,
        docs,
        "localizedNotificationMessage",
        ctx.context(
            &format!(
                "deviceManagement/notificationMessageTemplates('{}')/localizedNotificationMessages",
                t.id
            ),
            None,
        ),
    )
}

async fn get_message(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path((id, mid)): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let (template_id, m) = templates::message(&caller.cx(&state.app), &id, &mid).await?;
    let context = ctx.context(
        &format!(
            "deviceManagement/notificationMessageTemplates('{template_id}')/localizedNotificationMessages/$entity"
        ),
        None,
    );
    Ok(graph_json(StatusCode::OK, with_context(context, message_doc(&m, &ctx))))
}

async fn create_message(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let (template_id, m) = templates::add(&caller.cx(&state.app), &id, |template_id| {
        parse_message(template_id, &body, &ctx, caller.now)
    })
    .await?;
    let context = ctx.context(
        &format!(
            "deviceManagement/notificationMessageTemplates('{template_id}')/localizedNotificationMessages/$entity"
        ),
        None,
    );
    Ok(graph_json(
        StatusCode::CREATED,
        with_context(context, message_doc(&m, &ctx)),
    ))
}

async fn patch_message(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path((id, mid)): Path<(String, String)>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let props =
        validate_patch(&LOCALIZED_NOTIFICATION_MESSAGE, &body, ctx.version).map_err(|e| ApiError::bad_request(e.0))?;
    if props.contains_key("locale") {
        return Err(ApiError::bad_request(
            "The property 'locale' of a localized message cannot be changed: create a message for the other locale.",
        ));
    }
    for name in ["subject", "messageTemplate"] {
        if props
            .get(name)
            .is_some_and(|v| v.as_str().is_none_or(|s| s.trim().is_empty()))
        {
            return Err(ApiError::bad_request(format!("The property '{name}' cannot be empty.")));
        }
    }
    if props.get("isDefault") == Some(&Value::Bool(false)) {
        return Err(ApiError::bad_request(
            "The property 'isDefault' can only be set: to unset it, set it on another localized message.",
        ));
    }
    let change = MessagePatch {
        subject: props.get("subject").and_then(Value::as_str).map(str::to_string),
        message_template: props.get("messageTemplate").and_then(Value::as_str).map(str::to_string),
        make_default: props.get("isDefault") == Some(&Value::Bool(true)),
    };
    templates::patch_message(&caller.cx(&state.app), &id, &mid, change).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_message(
    caller: GraphCaller,
    Path((id, mid)): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<StatusCode> {
    templates::delete_message(&caller.cx(&state.app), &id, &mid).await?;
    Ok(StatusCode::NO_CONTENT)
}
