//! Knowledge-base articles.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Article {
    pub id: String,
    /// "error_code", "faq" or "troubleshooter".
    pub kind: String,
    /// The error code this article explains (error_code articles).
    #[serde(default)]
    pub code: Option<String>,
    pub title: String,
    #[serde(default)]
    pub body: String,
}
