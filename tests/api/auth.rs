//! Graph bearer tokens: every refusal is 401 InvalidAuthenticationToken or 403 Forbidden, and a
//! tenant's token reaches only that tenant.

use intune_mtd_emulator::identity::tokens::{sign, AccessClaims};
use jsonwebtoken::{EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::{assert_error, TestApp};

both_backends!(
    refused_tokens_get_401,
    tokens_expire_on_the_tenant_clock,
    missing_application_permission_gets_403,
    a_tenant_token_reaches_only_its_tenant,
    a_deleted_tenants_tokens_stay_dead_when_its_id_is_used_again,
);

fn decode_unverified(token: &str) -> AccessClaims {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn refused_tokens_get_401(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let claims = decode_unverified(&token);
    // The genuine token is accepted, and remembered as verified: the forgeries below, with its
    // claims and key id, are refused all the same.
    let r = app
        .graph(Method::GET, "/v1.0/deviceManagement", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let r = app.req(Method::GET, "/v1.0/deviceManagement").send().await.unwrap();
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let message = assert_error(r, 401, "InvalidAuthenticationToken").await;
    assert_eq!(message, "Access token is empty.");

    let r = app
        .req(Method::GET, "/v1.0/deviceManagement")
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "InvalidAuthenticationToken").await;

    for malformed in ["abc", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30"] {
        let r = app
            .graph(Method::GET, "/v1.0/deviceManagement", malformed)
            .send()
            .await
            .unwrap();
        assert_error(r, 401, "InvalidAuthenticationToken").await;
    }

    // Signed by a key the emulator never issued, under the emulator's key id.
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid;
    let foreign = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let pem = rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&foreign, rsa::pkcs8::LineEnding::LF).unwrap();
    let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = kid;
    let forged = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()).unwrap();
    let r = app
        .graph(Method::GET, "/v1.0/deviceManagement", &forged)
        .send()
        .await
        .unwrap();
    assert!(assert_error(r, 401, "InvalidAuthenticationToken")
        .await
        .contains("signature"));

    // A tampered payload breaks the signature too.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[1] = parts[1].chars().rev().collect();
    let r = app
        .graph(Method::GET, "/v1.0/deviceManagement", &parts.join("."))
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "InvalidAuthenticationToken").await;

    // HS256 with no key id is not accepted whatever it says.
    let hs = jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(b"k")).unwrap();
    let r = app
        .graph(Method::GET, "/v1.0/deviceManagement", &hs)
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "InvalidAuthenticationToken").await;

    // Properly signed, but for another audience.
    let mut other = claims.clone();
    other.aud = "https://management.azure.com".into();
    let wrong_aud = sign(app.state.app.keys(), &other).await.unwrap();
    let r = app
        .graph(Method::GET, "/v1.0/deviceManagement", &wrong_aud)
        .send()
        .await
        .unwrap();
    assert!(assert_error(r, 401, "InvalidAuthenticationToken")
        .await
        .contains("audience"));

    // Properly signed, for a tenant that does not exist (or no longer does).
    let mut ghost = claims.clone();
    ghost.tid = "0b8e6a2c-0000-0000-0000-000000000000".into();
    let ghost_token = sign(app.state.app.keys(), &ghost).await.unwrap();
    let r = app
        .graph(Method::GET, "/v1.0/deviceManagement", &ghost_token)
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "InvalidAuthenticationToken").await;
    assert_eq!(
        app.req(Method::DELETE, &format!("/_emulator/tenants/{}", t.id))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let r = app
        .graph(Method::GET, "/v1.0/deviceManagement", &token)
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "InvalidAuthenticationToken").await;
}

async fn tokens_expire_on_the_tenant_clock(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    assert_eq!(
        app.graph(Method::GET, "/v1.0/deviceManagement", &token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.advance_clock(&t.id, "PT50M").await;
    assert_eq!(
        app.graph(Method::GET, "/v1.0/deviceManagement", &token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.advance_clock(&t.id, "PT30M").await;
    let r = app
        .graph(Method::GET, "/v1.0/deviceManagement", &token)
        .send()
        .await
        .unwrap();
    assert!(assert_error(r, 401, "InvalidAuthenticationToken")
        .await
        .contains("expired"));
    // A token minted now is valid again.
    let fresh = app.admin_token(&t).await;
    assert_eq!(
        app.graph(Method::GET, "/v1.0/deviceManagement", &fresh)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

async fn missing_application_permission_gets_403(app: TestApp) {
    let t = app.create_tenant().await;
    let (id, secret) = app.register_app(&t.id, &["User.Read.All"]).await;
    let token = app.token(&t.id, &id, &secret).await;
    let r = app
        .graph(Method::GET, "/v1.0/deviceManagement", &token)
        .send()
        .await
        .unwrap();
    let message = assert_error(r, 403, "Forbidden").await;
    assert!(message.contains("DeviceManagementServiceConfig.Read.All"), "{message}");

    let (id, secret) = app
        .register_app(&t.id, &["DeviceManagementServiceConfig.Read.All"])
        .await;
    let reader = app.token(&t.id, &id, &secret).await;
    assert_eq!(
        app.graph(Method::GET, "/beta/deviceManagement", &reader)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = app
        .graph(Method::PATCH, "/v1.0/deviceManagement", &reader)
        .json(&json!({"settings": {"secureByDefault": true}}))
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "Forbidden").await;

    let (id, secret) = app
        .register_app(&t.id, &["DeviceManagementServiceConfig.ReadWrite.All"])
        .await;
    let writer = app.token(&t.id, &id, &secret).await;
    let r = app
        .graph(Method::PATCH, "/v1.0/deviceManagement", &writer)
        .json(&json!({"settings": {"secureByDefault": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

async fn a_tenant_token_reaches_only_its_tenant(app: TestApp) {
    let a = app.create_tenant().await;
    let b = app.create_tenant().await;
    let token_a = app.admin_token(&a).await;
    let token_b = app.admin_token(&b).await;
    let r = app
        .graph(Method::PATCH, "/v1.0/deviceManagement", &token_a)
        .json(&json!({"settings": {"deviceComplianceCheckinThresholdDays": 7}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let seen_a: Value = app
        .graph(Method::GET, "/v1.0/deviceManagement", &token_a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seen_b: Value = app
        .graph(Method::GET, "/v1.0/deviceManagement", &token_b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen_a["settings"]["deviceComplianceCheckinThresholdDays"], 7);
    assert_eq!(seen_b["settings"]["deviceComplianceCheckinThresholdDays"], 30);
    assert_ne!(seen_a["id"], seen_b["id"]);
    // A's app cannot sign in to B, even with the right secret.
    let r = app.token_response(&b.id, &a.client_id, &a.client_secret).await;
    assert_eq!(r.status(), 400);
    // Moving A's clock does not expire B's tokens.
    app.advance_clock(&a.id, "P1D").await;
    assert_eq!(
        app.graph(Method::GET, "/v1.0/deviceManagement", &token_b)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.graph(Method::GET, "/v1.0/deviceManagement", &token_a)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

/// A tenant deleted and created again under the same id is another tenant: the old tenant's
/// tokens (signed by the same deployment key, for the same `tid`) name an app the new one does
/// not have, and are refused; the new tenant's own tokens work. Also after the replica cached
/// the old tenant, on the one-statement GET path.
async fn a_deleted_tenants_tokens_stay_dead_when_its_id_is_used_again(app: TestApp) {
    let old = app.create_tenant().await;
    let old_token = app.admin_token(&old).await;
    let path = "/v1.0/deviceManagement/managedDevices/00000000-0000-0000-0000-000000000001";
    let r = app.graph(Method::GET, path, &old_token).send().await.unwrap();
    assert_eq!(r.status(), 404, "the old token works while its tenant exists");
    let r = app
        .req(Method::DELETE, &format!("/_emulator/tenants/{}", old.id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app
        .req(Method::POST, "/_emulator/tenants")
        .json(&json!({ "id": old.id }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    for path in [
        path,
        "/v1.0/deviceManagement/mobileThreatDefenseConnectors",
        "/v1.0/users",
    ] {
        let r = app.graph(Method::GET, path, &old_token).send().await.unwrap();
        let message = assert_error(r, 401, "InvalidAuthenticationToken").await;
        assert!(
            message.contains("The application the token was issued to does not exist in the tenant"),
            "{path}: {message}"
        );
    }
    let new = crate::common::Tenant {
        id: old.id.clone(),
        client_id: body["bootstrapApp"]["clientId"].as_str().unwrap().to_string(),
        client_secret: body["bootstrapApp"]["clientSecret"].as_str().unwrap().to_string(),
    };
    let new_token = app.admin_token(&new).await;
    let r = app.graph(Method::GET, path, &new_token).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // An app registered after the replica read the tenant's apps is known at once.
    let (client_id, secret) = app
        .register_app(&new.id, &["DeviceManagementServiceConfig.Read.All"])
        .await;
    let later = app.token(&new.id, &client_id, &secret).await;
    let r = app
        .graph(
            Method::GET,
            "/v1.0/deviceManagement/mobileThreatDefenseConnectors",
            &later,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
