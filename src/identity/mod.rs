//! The Entra ID stand-in: signing keys and access tokens.

pub mod keys;
pub mod tls;
pub mod tokens;
