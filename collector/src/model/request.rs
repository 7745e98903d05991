//! Service, move and information requests and their events.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestQuery {
    /// "open" or "closed".
    pub state: Option<String>,
    pub account: Option<String>,
    /// The companies the caller sees (set by the API); None: all.
    #[serde(skip)]
    pub accounts: Option<Vec<String>>,
    pub serial: Option<String>,
    pub kind: Option<String>,
    /// Only open requests past their due time.
    #[serde(default)]
    pub overdue: bool,
    pub limit: Option<u32>,
    /// The next page: requests older than this one (its number).
    pub before: Option<String>,
    /// Only requests of products this user administers (set by the API).
    #[serde(skip)]
    pub administrator: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RequestEvent {
    pub at_ms: i64,
    /// "opened", "occurrence", "closed"; "updated" (an operator's status
    /// update or comment: the customer is told), "comment" (the customer's).
    pub event: String,
    pub text: String,
    /// The user who wrote it; None: the collector's rules.
    pub author: Option<String>,
}

/// The statuses an operator gives a request as work on it goes on.
pub const REQUEST_STATUSES: [&str; 6] = [
    "new",
    "assigned",
    "technician_scheduled",
    "waiting_for_parts",
    "waiting_for_customer",
    "solved",
];

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceRequest {
    pub number: String,
    pub account: Option<String>,
    pub serial: Option<String>,
    pub kind: String,
    pub priority: String,
    pub state: String,
    /// "automatic" or the user who opened it.
    pub opened_by: String,
    pub fingerprint: Option<String>,
    pub title: String,
    pub code: Option<String>,
    pub kb_article: Option<String>,
    pub occurrences: u32,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub opened_at_ms: i64,
    pub closed_at_ms: Option<i64>,
    pub close_reason: Option<String>,
    /// What the customer wrote when opening it.
    pub description: String,
    pub contact_name: String,
    pub contact_phone: String,
    /// The product's location (site address, location on site) when opened.
    pub location: String,
    /// A move request's destination: the address and the location there.
    pub destination_address: Option<String>,
    pub destination_location: Option<String>,
    /// The operator's status (`REQUEST_STATUSES`).
    pub status: String,
    /// When it is due (the product's terms when it opened); None: no terms.
    pub due_at_ms: Option<i64>,
    /// Open past its due time.
    pub overdue: bool,
    /// Only in single-request answers.
    pub events: Vec<RequestEvent>,
}

#[cfg(test)]
impl ServiceRequest {
    /// An open automatic incident with nothing else said: tests set what
    /// they look at with struct update syntax.
    pub(crate) fn example() -> ServiceRequest {
        ServiceRequest {
            number: "SR-000001".into(),
            account: None,
            serial: None,
            kind: "incident".into(),
            priority: "normal".into(),
            state: "open".into(),
            opened_by: "automatic".into(),
            fingerprint: None,
            title: String::new(),
            code: None,
            kb_article: None,
            occurrences: 1,
            first_seen_ms: 0,
            last_seen_ms: 0,
            opened_at_ms: 0,
            closed_at_ms: None,
            close_reason: None,
            description: String::new(),
            contact_name: String::new(),
            contact_phone: String::new(),
            location: String::new(),
            destination_address: None,
            destination_location: None,
            status: "new".into(),
            due_at_ms: None,
            overdue: false,
            events: Vec::new(),
        }
    }
}

/// An operator's status update (with an optional text), or anyone's
/// comment (no status).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RequestNote {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub text: String,
}

/// A request opened by a user: service (incident), move or information.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    pub account: String,
    pub serial: Option<String>,
    /// "incident", "move" or "information".
    pub kind: String,
    /// The subject (an information request's too).
    pub title: String,
    #[serde(default)]
    pub priority: Option<String>,
    /// What happened, or (information) the question.
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub contact_name: String,
    #[serde(default)]
    pub contact_phone: String,
    /// A move request's destination (required for a move).
    #[serde(default)]
    pub destination_address: Option<String>,
    #[serde(default)]
    pub destination_location: Option<String>,
    /// Recorded by the API as the caller, whatever is given here.
    #[serde(default)]
    pub user: String,
}
