//! Proof Key for Code Exchange (RFC 7636): the challenge an authorization request carries and
//! the verifier the token request must answer it with.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The challenge methods Entra accepts. A request naming none means `plain`.
pub fn method_is_known(method: &str) -> bool {
    matches!(method, "S256" | "plain")
}

/// Whether a challenge is well formed: 43 to 128 characters of the verifier alphabet
/// (`S256` challenges are 43 base64url characters).
pub fn challenge_is_valid(challenge: &str) -> bool {
    (43..=128).contains(&challenge.len())
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `verifier` answers `challenge` under `method` (`S256`, or `plain` when None).
pub fn verifies(verifier: &str, challenge: &str, method: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    let expected = match method.unwrap_or("plain") {
        "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        "plain" => verifier.to_string(),
        _ => return false,
    };
    expected.as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_an_independent_computation_and_nothing_else() {
        // The challenge as Python computes it:
        // base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        let verifier = "dBjftJeZ4CVP-mJ92K1uyhgW4iP0l5OvJyAHU3L1FJk";
        let challenge = "bUae5lQIs337fF9goVdDt_hgoxrayRYZ8qrsvmUioSI";
        assert!(verifies(verifier, challenge, Some("S256")));
        assert!(!verifies(
            "dBjftJeZ4CVP-mJ92K1uyhgW4iP0l5OvJyAHU3L1FJK",
            challenge,
            Some("S256")
        ));
        assert!(!verifies(verifier, challenge, None), "plain compares the text itself");
        assert!(challenge_is_valid(challenge));
    }

    #[test]
    fn plain_compares_text_and_unknown_methods_fail() {
        let v = "a".repeat(43);
        assert!(verifies(&v, &v, None));
        assert!(verifies(&v, &v, Some("plain")));
        assert!(!verifies(&v, &v, Some("S512")));
        assert!(method_is_known("S256") && method_is_known("plain") && !method_is_known("s256"));
        assert!(!challenge_is_valid("short"));
        assert!(!challenge_is_valid(&format!("{}<", "a".repeat(43))));
    }
}
