//! The claims of an access token (a JWT signed HS256 with the node's secret). The server issues
//! and checks them; the load tester mints them from the same secret; a client needs only the
//! token's text. One definition, so the two sides cannot drift.

use serde::{Deserialize, Serialize};

/// Claims of an access token. `sid` ties it to a login session, so logout can revoke it early.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// User id.
    pub sub: String,
    /// Username, so a connection can show who it is without a storage read.
    pub name: String,
    /// Login session id.
    pub sid: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
}
