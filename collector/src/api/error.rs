//! The API's one error type: every refusal and failure answers JSON
//! `{"error": {"code": "...", "message": "..."}}` with a stable code.
//! Handlers return `Result<_, ApiError>` and use `?` on store calls and
//! extractor results.

use crate::model::{Role, User};
use crate::store::{Refusal, StoreError};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

pub(crate) type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds for a `Retry-After` header (429).
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The stable code the answer carries.
    pub(crate) fn code(&self) -> &'static str {
        self.code
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// What went wrong and what to do, in English.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// Seconds until trying again makes sense (429).
    pub(crate) fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// Too many requests (429), with when to try again.
    pub(crate) fn too_many(
        code: &'static str,
        message: impl Into<String>,
        after_secs: u64,
    ) -> Self {
        ApiError {
            retry_after: Some(after_secs.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }

    /// Bad request (400): the request itself is malformed.
    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// Unprocessable (422): well-formed, but not something that can be done.
    pub(crate) fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// Conflict (409): the data as it is now stands in the way.
    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// Not found (404); tenant data outside the caller's reach answers
    /// this too, as if it did not exist (invariant 7).
    pub(crate) fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// Forbidden (403): beyond the caller's role; says whom to ask.
    pub(crate) fn forbidden(c: &User, what: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{what}: not for a user with the role {}; ask an {}",
                c.role.as_str(),
                if c.role == Role::ProductAdministrator {
                    "account manager"
                } else {
                    "operator"
                }
            ),
        )
    }

    /// Unauthenticated (401), with the challenge RFC 6750 asks for.
    pub(crate) fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 422 `id_mismatch`: a body naming another id than its path.
    pub(crate) fn id_mismatch(body: &str, path: &str) -> Self {
        Self::unprocessable(
            "id_mismatch",
            format!("the body's id {body:?} is not the path's {path:?}"),
        )
    }

    /// Nobody locks themselves out: the last operator could not be replaced
    /// through the API.
    pub(crate) fn self_lockout(what: &str) -> Self {
        Self::conflict(
            "self_lockout",
            format!("{what}: ask another operator or account manager to do it"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"meterlink\""),
            );
        }
        r
    }
}

/// The HTTP status of a store refusal. Exhaustive: a new refusal code
/// needs a decision here.
fn refusal_status(code: Refusal) -> StatusCode {
    use Refusal::*;
    match code {
        GroupExists
        | RequestClosed
        | DuplicateReading
        | UserIdTaken
        | AgentOfAnotherAccount
        | EmailTaken
        | NotPending
        | RegistrationNotQueued
        | TotpOn
        | TotpNotStarted => StatusCode::CONFLICT,
        AgentDisabled | CertificateReplaced | JoinTokenExpired | JoinTokenUnknown
        | JoinTokenUsed | LinkInvalid | CodeInvalid => StatusCode::FORBIDDEN,
        AccountNotFound
        | InvalidAgentId
        | InvalidEmail
        | EmaintenanceProduct
        | ImplausibleReading
        | InvalidAccountId
        | InvalidAdministrator
        | InvalidArticle
        | InvalidArticleId
        | InvalidBillingDay
        | InvalidGroupName
        | InvalidKind
        | InvalidPeriod
        | InvalidPriority
        | InvalidReading
        | InvalidTimeZone
        | InvalidTitle
        | InvalidUser
        | InvalidUserId
        | ProductOfAnotherAccount
        | ReadingInFuture
        | InvalidTerms
        | InvalidContractLine
        | InvalidRequest
        | OrganisationNotFound
        | InvalidOrganisationId
        | InvalidOrganisationName
        | InvalidCompanies
        | InvalidRegistration
        | InvalidNotification => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Refused { code, message } => {
                ApiError::new(refusal_status(code), code.code(), message)
            }
            // Infrastructure, not the caller: 500 for what an operator must
            // mend, 503 for what may pass (the database unreachable).
            e @ StoreError::SchemaTooNew { .. } => {
                tracing::error!(error = %e, "API request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "schema_too_new",
                    "the store was migrated by a newer collector; see the collector log",
                )
            }
            e @ StoreError::NoRandomness(_) => {
                tracing::error!(error = %e, "API request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "no_randomness",
                    "the collector's host has no working random source; see the collector log",
                )
            }
            e @ StoreError::Invalid { .. } => {
                tracing::error!(error = %e, "API request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "stored_data_unreadable",
                    "stored data could not be read; see the collector log",
                )
            }
            e @ StoreError::Db { .. } => {
                tracing::error!(error = %e, "API request failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the store failed; see the collector log, then retry",
                )
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        ApiError::bad_request("invalid_body", e.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", e.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infrastructure_failures_are_server_errors() {
        let schema: ApiError = StoreError::SchemaTooNew {
            store: "x.db".into(),
            have: 9,
            known: 5,
        }
        .into();
        assert_eq!(schema.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(schema.code, "schema_too_new");
        let random: ApiError = StoreError::from(crate::token::NoRandomness).into();
        assert_eq!(random.status, StatusCode::INTERNAL_SERVER_ERROR);
        let down: ApiError = StoreError::Db {
            path: "db".into(),
            source: sqlx::Error::PoolTimedOut,
        }
        .into();
        assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
        let refused: ApiError = StoreError::refused(Refusal::GroupExists, "taken").into();
        assert_eq!(
            (refused.status, refused.code),
            (StatusCode::CONFLICT, "group_exists")
        );
        let invalid: ApiError = StoreError::refused(Refusal::InvalidTitle, "no title").into();
        assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}
