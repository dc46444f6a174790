//! The Entra ID stand-in: signing keys and access tokens.

pub mod keys;
pub mod tokens;
