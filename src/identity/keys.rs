//! The token signing key: RSA 2048, kept in the database so that tokens verify across restarts
//! and replicas, generated on first use (not at start-up, which must stay fast).

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, RwLock};

use super::tokens::AccessClaims;
use crate::clock::Clock;
use crate::store::{SigningKeyRecord, Store, StoreError};

/// A public key as JWKS publishes it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Jwk {
    pub kty: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub alg: &'static str,
    pub kid: String,
    pub n: String,
    pub e: String,
}

pub struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
}

#[derive(Default)]
struct Loaded {
    active: Option<Arc<SigningKey>>,
    decoding: HashMap<String, Arc<DecodingKey>>,
    jwks: Vec<Jwk>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key: {0}")]
    Key(String),
}

pub struct KeyRing {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    loaded: RwLock<Loaded>,
    generating: Mutex<()>,
    /// Tokens whose signature and audience were verified against this ring's keys (see
    /// `tokens::verify_signature`). Keys are never replaced, so a verified token stays so.
    verified: std::sync::Mutex<HashMap<String, Arc<AccessClaims>>>,
}

/// How many verified tokens a replica remembers; the set is emptied when it is full.
const VERIFIED_TOKENS: usize = 4096;

impl KeyRing {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        KeyRing {
            store,
            clock,
            loaded: RwLock::new(Loaded::default()),
            generating: Mutex::new(()),
            verified: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The claims of `token` if it was verified before.
    pub fn verified(&self, token: &str) -> Option<Arc<AccessClaims>> {
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(token)
            .cloned()
    }

    /// Remembers that `token` was verified, with its claims.
    pub fn remember_verified(&self, token: &str, claims: Arc<AccessClaims>) {
        let mut verified = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if verified.len() >= VERIFIED_TOKENS {
            verified.clear();
        }
        verified.insert(token.to_string(), claims);
    }

    /// The key new tokens are signed with, created on first use.
    pub async fn active(&self) -> Result<Arc<SigningKey>, KeyError> {
        if let Some(k) = self.loaded.read().await.active.clone() {
            return Ok(k);
        }
        let _one_at_a_time = self.generating.lock().await;
        if let Some(k) = self.reload().await? {
            return Ok(k);
        }
        let created_at = self.clock.wall_now();
        let record = tokio::task::spawn_blocking(move || generate(created_at))
            .await
            .map_err(|e| KeyError::Key(e.to_string()))??;
        // Another replica may have stored its key first: whichever is stored is used.
        self.store.insert_signing_key_if_none(&record).await?;
        self.reload()
            .await?
            .ok_or_else(|| KeyError::Key("the signing key was not stored".into()))
    }

    /// The verification key for `kid`, reloading from the database for a key another replica
    /// created after this one loaded.
    pub async fn decoding_key(&self, kid: &str) -> Result<Option<Arc<DecodingKey>>, KeyError> {
        if let Some(k) = self.loaded.read().await.decoding.get(kid) {
            return Ok(Some(k.clone()));
        }
        self.reload().await?;
        Ok(self.loaded.read().await.decoding.get(kid).cloned())
    }

    pub async fn jwks(&self) -> Result<Vec<Jwk>, KeyError> {
        self.active().await?;
        Ok(self.loaded.read().await.jwks.clone())
    }

    async fn reload(&self) -> Result<Option<Arc<SigningKey>>, KeyError> {
        let records = self.store.signing_keys().await?;
        let mut next = Loaded::default();
        for r in &records {
            let private =
                RsaPrivateKey::from_pkcs8_pem(&r.private_key_pem).map_err(|e| KeyError::Key(e.to_string()))?;
            let jwk = jwk_of(&r.kid, &RsaPublicKey::from(&private));
            let decoding =
                DecodingKey::from_rsa_components(&jwk.n, &jwk.e).map_err(|e| KeyError::Key(e.to_string()))?;
            next.decoding.insert(r.kid.clone(), Arc::new(decoding));
            next.jwks.push(jwk);
            let encoding =
                EncodingKey::from_rsa_pem(r.private_key_pem.as_bytes()).map_err(|e| KeyError::Key(e.to_string()))?;
            // The newest key signs.
            next.active = Some(Arc::new(SigningKey {
                kid: r.kid.clone(),
                encoding,
            }));
        }
        let active = next.active.clone();
        *self.loaded.write().await = next;
        Ok(active)
    }
}

fn generate(created_at: DateTime<Utc>) -> Result<SigningKeyRecord, KeyError> {
    let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).map_err(|e| KeyError::Key(e.to_string()))?;
    let pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::Key(e.to_string()))?;
    let public = RsaPublicKey::from(&private);
    Ok(SigningKeyRecord {
        kid: key_id(&public),
        private_key_pem: pem.to_string(),
        created_at,
    })
}

/// A thumbprint of the public key, as short as Entra's key ids.
fn key_id(public: &RsaPublicKey) -> String {
    let mut h = Sha256::new();
    h.update(public.n().to_bytes_be());
    h.update(public.e().to_bytes_be());
    URL_SAFE_NO_PAD.encode(h.finalize())[..27].to_string()
}

fn jwk_of(kid: &str, public: &RsaPublicKey) -> Jwk {
    Jwk {
        kty: "RSA",
        use_: "sig",
        alg: "RS256",
        kid: kid.to_string(),
        n: URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        e: URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
    }
}
