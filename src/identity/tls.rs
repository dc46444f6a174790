//! HTTPS for the emulator, so that Microsoft's auth libraries (which insist on an `https`
//! authority) and browsers can use it: a local certificate authority, created on first start and
//! kept in the database (so every replica and every restart serves certificates the same trusted
//! CA signed), and a server certificate it signs at each start for `localhost`, `127.0.0.1`,
//! `::1` and any configured names. Or, instead, a certificate and key the operator supplies.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, Utc};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::store::{StoreError, TenantStore, TlsAuthorityRecord};

/// The names every generated server certificate covers.
pub const DEFAULT_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("certificate: {0}")]
    Certificate(String),
}

fn cert_error(e: impl std::fmt::Display) -> TlsError {
    TlsError::Certificate(e.to_string())
}

/// A certificate validity bound: the day of `t` (rcgen takes dates).
macro_rules! day_of {
    ($t:expr) => {{
        let t: DateTime<Utc> = $t;
        date_time_ymd(t.year(), t.month() as u8, t.day() as u8)
    }};
}

/// The deployment's CA: created (and stored) on first use; whichever replica stored one first
/// wins, as with the token signing key.
pub async fn authority(store: &dyn TenantStore, now: DateTime<Utc>) -> Result<TlsAuthorityRecord, TlsError> {
    if let Some(found) = store.tls_authority().await? {
        return Ok(found);
    }
    let created = tokio::task::spawn_blocking(move || generate_authority(now))
        .await
        .map_err(cert_error)??;
    store.insert_tls_authority_if_none(&created).await?;
    store
        .tls_authority()
        .await?
        .ok_or_else(|| TlsError::Certificate("the certificate authority was not stored".into()))
}

fn generate_authority(now: DateTime<Utc>) -> Result<TlsAuthorityRecord, TlsError> {
    let key = KeyPair::generate().map_err(cert_error)?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "Intune MTD emulator local CA");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Intune MTD emulator");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = day_of!(now - Duration::days(1));
    params.not_after = day_of!(now + Duration::days(3650));
    let cert = params.self_signed(&key).map_err(cert_error)?;
    Ok(TlsAuthorityRecord {
        certificate_pem: cert.pem(),
        private_key_pem: key.serialize_pem(),
        created_at: now,
    })
}

/// A server certificate the CA signs for `names` (besides the defaults), valid from yesterday
/// for a year: the chain (leaf, then CA) and the leaf's key.
pub fn server_certificate(
    ca: &TlsAuthorityRecord,
    names: &[String],
    now: DateTime<Utc>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let ca_key = KeyPair::from_pem(&ca.private_key_pem).map_err(cert_error)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.certificate_pem, ca_key).map_err(cert_error)?;
    let mut all: Vec<String> = DEFAULT_NAMES.iter().map(|n| n.to_string()).collect();
    for n in names {
        if !all.iter().any(|a| a.eq_ignore_ascii_case(n)) {
            all.push(n.clone());
        }
    }
    let mut params = CertificateParams::new(all).map_err(cert_error)?;
    params.distinguished_name.push(DnType::CommonName, "localhost");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = day_of!(now - Duration::days(1));
    params.not_after = day_of!(now + Duration::days(365));
    let key = KeyPair::generate().map_err(cert_error)?;
    let cert = params.signed_by(&key, &issuer).map_err(cert_error)?;
    let ca_der = CertificateDer::from_pem_slice(ca.certificate_pem.as_bytes()).map_err(cert_error)?;
    let key_der = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).map_err(cert_error)?;
    Ok((vec![cert.der().clone(), ca_der], key_der))
}

/// A certificate chain and key from PEM files the operator supplies.
pub fn supplied_certificate(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(cert_error)?;
    if chain.is_empty() {
        return Err(TlsError::Certificate(
            "the certificate file holds no certificate".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(cert_error)?;
    Ok((chain, key))
}

/// The rustls configuration of the HTTPS listener: HTTP/1.1 and HTTP/2 by ALPN.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(cert_error)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(cert_error)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;

    #[test]
    fn the_server_certificate_chains_to_the_authority_and_names_every_host() {
        let now = Utc::now();
        let ca = generate_authority(now).unwrap();
        let (chain, key) = server_certificate(&ca, &["emulator.test".into()], now).unwrap();
        assert_eq!(chain.len(), 2);
        // rustls accepts the pair, and a client trusting only the CA verifies the leaf for
        // each name.
        server_config(chain.clone(), key).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(chain[1].clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        for name in ["localhost", "127.0.0.1", "::1", "emulator.test"] {
            let server_name = rustls::pki_types::ServerName::try_from(name).unwrap();
            verifier
                .verify_server_cert(&chain[0], &[], &server_name, &[], rustls::pki_types::UnixTime::now())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let other = rustls::pki_types::ServerName::try_from("elsewhere.test").unwrap();
        assert!(verifier
            .verify_server_cert(&chain[0], &[], &other, &[], rustls::pki_types::UnixTime::now())
            .is_err());
    }
}
