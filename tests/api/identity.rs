//! The Entra ID stand-in: client credentials, keys, discovery, and Entra-shaped errors.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Method;
use serde_json::Value;

use crate::both_backends;
use crate::common::TestApp;

both_backends!(
    client_credentials_issue_verifiable_app_tokens,
    token_errors_have_entra_shape,
    discovery_documents_describe_the_tenant
);

async fn client_credentials_issue_verifiable_app_tokens(app: TestApp) {
    let t = app.create_tenant().await;
    let (client_id, secret) = app
        .register_app(&t.id, &["DeviceManagementServiceConfig.Read.All"])
        .await;
    let r = app.token_response(&t.id, &client_id, &secret).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store, no-cache");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    let token = body["access_token"].as_str().unwrap();

    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.unwrap();
    let jwks: Value = app
        .req(Method::GET, &format!("/{}/discovery/v2.0/keys", t.id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the signing key is published");
    let key = DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["https://graph.microsoft.com"]);
    validation.set_issuer(&[format!("https://sts.windows.net/{}/", t.id)]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("verifies against the JWKS")
        .claims;
    assert_eq!(claims["tid"], t.id.as_str());
    assert_eq!(claims["appid"], client_id.as_str());
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(
        claims["roles"],
        serde_json::json!(["DeviceManagementServiceConfig.Read.All"])
    );
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3599);
    assert!(claims["oid"].is_string() && claims["sub"] == claims["oid"]);

    // client_secret_basic, and the Graph application id as the resource.
    let r = app
        .req(Method::POST, &format!("/{}/oauth2/v2.0/token", t.id))
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "00000003-0000-0000-c000-000000000000/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let claims = jsonwebtoken::decode::<Value>(body["access_token"].as_str().unwrap(), &key, &{
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&["00000003-0000-0000-c000-000000000000"]);
        v
    })
    .unwrap()
    .claims;
    assert_eq!(claims["aud"], "00000003-0000-0000-c000-000000000000");

    // The virtual clock dates tokens.
    app.advance_clock(&t.id, "P10D").await;
    let later = app.token(&t.id, &client_id, &secret).await;
    let mut v = Validation::new(Algorithm::RS256);
    v.validate_exp = false;
    v.set_audience(&["https://graph.microsoft.com"]);
    let later_claims = jsonwebtoken::decode::<Value>(&later, &key, &v).unwrap().claims;
    assert!(later_claims["iat"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() >= 10 * 86_400);
}

async fn token_errors_have_entra_shape(app: TestApp) {
    let t = app.create_tenant().await;
    let url = format!("/{}/oauth2/v2.0/token", t.id);
    let ok_scope = "https://graph.microsoft.com/.default";
    /// (path, form, status, Entra error, AADSTS code)
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, u16, &'a str, u64);
    let cases: Vec<Case> = vec![
        (
            url.clone(),
            vec![
                ("client_id", &t.client_id),
                ("client_secret", &t.client_secret),
                ("scope", ok_scope),
            ],
            400,
            "invalid_request",
            900144,
        ),
        (
            url.clone(),
            vec![
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("client_id", &t.client_id),
                ("scope", ok_scope),
            ],
            400,
            "unsupported_grant_type",
            70003,
        ),
        (
            url.clone(),
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "8c1d1d0f-0000-0000-0000-000000000000"),
                ("client_secret", "x"),
                ("scope", ok_scope),
            ],
            400,
            "unauthorized_client",
            700016,
        ),
        (
            url.clone(),
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &t.client_id),
                ("client_secret", "wrong"),
                ("scope", ok_scope),
            ],
            401,
            "invalid_client",
            7000215,
        ),
        (
            url.clone(),
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &t.client_id),
                ("scope", ok_scope),
            ],
            401,
            "invalid_client",
            7000218,
        ),
        (
            url.clone(),
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &t.client_id),
                ("client_secret", &t.client_secret),
                ("scope", "https://graph.microsoft.com/User.Read"),
            ],
            400,
            "invalid_scope",
            1002012,
        ),
        (
            url.clone(),
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &t.client_id),
                ("client_secret", &t.client_secret),
                ("scope", "https://vault.azure.net/.default"),
            ],
            400,
            "invalid_resource",
            500011,
        ),
        (
            url.clone(),
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &t.client_id),
                ("client_secret", &t.client_secret),
            ],
            400,
            "invalid_request",
            900144,
        ),
        (
            "/5d2e8b57-0000-0000-0000-000000000000/oauth2/v2.0/token".into(),
            vec![("grant_type", "client_credentials")],
            400,
            "invalid_request",
            90002,
        ),
        (
            "/contoso.example/oauth2/v2.0/token".into(),
            vec![("grant_type", "client_credentials")],
            400,
            "invalid_request",
            90002,
        ),
    ];
    for (path, form, status, error, code) in cases {
        let r = app.req(Method::POST, &path).form(&form).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{form:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], error, "{form:?}: {body}");
        assert_eq!(body["error_codes"], serde_json::json!([code]), "{body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with(&format!("AADSTS{code}: ")),
            "{body}"
        );
        assert!(body["trace_id"].is_string() && body["correlation_id"].is_string() && body["timestamp"].is_string());
    }
    // A JSON body is not a form.
    let r = app
        .req(Method::POST, &url)
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

async fn discovery_documents_describe_the_tenant(app: TestApp) {
    let t = app.create_tenant().await;
    let doc: Value = app
        .req(Method::GET, &format!("/{}/v2.0/.well-known/openid-configuration", t.id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["token_endpoint"],
        format!("{}/{}/oauth2/v2.0/token", app.base, t.id)
    );
    assert_eq!(doc["jwks_uri"], format!("{}/{}/discovery/v2.0/keys", app.base, t.id));
    let jwks: Value = app
        .http
        .get(doc["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    for path in [
        "/00000000-0000-0000-0000-0000000000aa/discovery/v2.0/keys",
        "/00000000-0000-0000-0000-0000000000aa/v2.0/.well-known/openid-configuration",
    ] {
        let r = app.req(Method::GET, path).send().await.unwrap();
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error_codes"], serde_json::json!([90002]));
    }
}
