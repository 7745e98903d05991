//! What the store answers when it cannot do what it was asked.

use crate::token::NoRandomness;

/// Why the store refused a request: the caller asked for something the
/// data or the rules do not allow. `code` is the REST API's stable
/// `error.code`; the API chooses the HTTP status from the variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    InvalidTerms,
    InvalidContractLine,
    InvalidRequest,
    OrganisationNotFound,
    InvalidOrganisationId,
    InvalidOrganisationName,
    InvalidCompanies,
    InvalidRegistration,
    InvalidNotification,
    NotPending,
    RegistrationNotQueued,
    TotpOn,
    TotpNotStarted,
    CodeInvalid,
    LinkInvalid,
    EmailTaken,
    InvalidEmail,
    AgentDisabled,
    AgentOfAnotherAccount,
    CertificateReplaced,
    InvalidAgentId,
    JoinTokenExpired,
    JoinTokenUnknown,
    JoinTokenUsed,
    AccountNotFound,
    DuplicateReading,
    EmaintenanceProduct,
    GroupExists,
    ImplausibleReading,
    InvalidAccountId,
    InvalidAdministrator,
    InvalidArticle,
    InvalidArticleId,
    InvalidBillingDay,
    InvalidGroupName,
    InvalidKind,
    InvalidPeriod,
    InvalidPriority,
    InvalidReading,
    InvalidTimeZone,
    InvalidTitle,
    InvalidUser,
    InvalidUserId,
    ProductOfAnotherAccount,
    ReadingInFuture,
    RequestClosed,
    UserIdTaken,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::InvalidTerms => "invalid_terms",
            Refusal::InvalidContractLine => "invalid_contract_line",
            Refusal::InvalidRequest => "invalid_request_data",
            Refusal::OrganisationNotFound => "organisation_not_found",
            Refusal::InvalidOrganisationId => "invalid_organisation_id",
            Refusal::InvalidOrganisationName => "invalid_organisation_name",
            Refusal::InvalidCompanies => "invalid_companies",
            Refusal::InvalidRegistration => "invalid_registration",
            Refusal::InvalidNotification => "invalid_notification",
            Refusal::NotPending => "not_pending",
            Refusal::RegistrationNotQueued => "registration_not_queued",
            Refusal::TotpOn => "totp_on",
            Refusal::TotpNotStarted => "totp_not_started",
            Refusal::CodeInvalid => "code_invalid",
            Refusal::LinkInvalid => "link_invalid",
            Refusal::EmailTaken => "email_taken",
            Refusal::InvalidEmail => "invalid_email",
            Refusal::AgentDisabled => "agent_disabled",
            Refusal::AgentOfAnotherAccount => "agent_of_another_account",
            Refusal::CertificateReplaced => "certificate_replaced",
            Refusal::InvalidAgentId => "invalid_agent_id",
            Refusal::JoinTokenExpired => "join_token_expired",
            Refusal::JoinTokenUnknown => "join_token_unknown",
            Refusal::JoinTokenUsed => "join_token_used",
            Refusal::AccountNotFound => "account_not_found",
            Refusal::DuplicateReading => "duplicate_reading",
            Refusal::EmaintenanceProduct => "emaintenance_product",
            Refusal::GroupExists => "group_exists",
            Refusal::ImplausibleReading => "implausible_reading",
            Refusal::InvalidAccountId => "invalid_account_id",
            Refusal::InvalidAdministrator => "invalid_administrator",
            Refusal::InvalidArticle => "invalid_article",
            Refusal::InvalidArticleId => "invalid_article_id",
            Refusal::InvalidBillingDay => "invalid_billing_day",
            Refusal::InvalidGroupName => "invalid_group_name",
            Refusal::InvalidKind => "invalid_kind",
            Refusal::InvalidPeriod => "invalid_period",
            Refusal::InvalidPriority => "invalid_priority",
            Refusal::InvalidReading => "invalid_reading",
            Refusal::InvalidTimeZone => "invalid_time_zone",
            Refusal::InvalidTitle => "invalid_title",
            Refusal::InvalidUser => "invalid_user",
            Refusal::InvalidUserId => "invalid_user_id",
            Refusal::ProductOfAnotherAccount => "product_of_another_account",
            Refusal::ReadingInFuture => "reading_in_future",
            Refusal::RequestClosed => "request_closed",
            Refusal::UserIdTaken => "user_id_taken",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or cannot be reached.
    #[error("store at {path}: {source}")]
    Db { path: String, source: sqlx::Error },
    #[error("observation {seq} from {agent}: {what}")]
    Invalid {
        agent: String,
        seq: u64,
        what: String,
    },
    /// A request the store refuses (unknown reference, rule broken).
    #[error("{message}")]
    Refused { code: Refusal, message: String },
    #[error("{0} not found")]
    NotFound(String),
    /// The database was migrated by a newer collector.
    #[error("{store}: schema version {have} is newer than this collector knows ({known}); run the newer collector")]
    SchemaTooNew {
        store: String,
        have: usize,
        known: usize,
    },
    #[error(transparent)]
    NoRandomness(#[from] NoRandomness),
}

impl StoreError {
    pub(crate) fn refused(code: Refusal, message: impl Into<String>) -> StoreError {
        StoreError::Refused {
            code,
            message: message.into(),
        }
    }
}
