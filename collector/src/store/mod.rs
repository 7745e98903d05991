//! The collector's store: the embedded SQLite file (default) or PostgreSQL
//! (several collector replicas on one database). Both run the same SQL,
//! written once in `sql/` (one module per concern) and compiled for each
//! backend (invariant S1); only schema migrations (`migrations/<dialect>/`)
//! and the duplicate check differ. The store uses only the model, tokens and
//! the pure filing and request rules (invariant C3).
//!
//! Durability: SQLite runs a WAL journal with `synchronous = FULL`, so every
//! commit fsyncs before it returns; PostgreSQL commits are durable by its own
//! settings (`synchronous_commit = on` by default). The collector acknowledges
//! a batch only after its commit returned.
//!
//! One transaction per batch holds the raw observations, the filed readings
//! (filing rules), the service-request changes (request rules) and, when an
//! external portal is configured, the outbox rows for those changes.

mod encoding;
mod error;
mod pg_array;
mod postgres;
mod sqlite;
#[cfg(test)]
mod tests;

pub use error::{Refusal, StoreError};
pub use postgres::{redact as redact_url, PgStore};
pub use sqlite::SqliteStore;

use crate::filing::FilingPolicy;
use crate::model::{
    Account, AgentCredential, AgentInfo, Article, ArticleHit, ArticleQuery, ArticleViewer,
    EmailItem, Group, HistoryQuery, IngestOutcome, IssuedCert, IssuedJoinToken, IssuedToken,
    JoinToken, ManualReading, NewJoinToken, NewRequest, NotificationSetting, Organisation,
    OutboxCounts, OutboxItem, OutboxResult, Page, Product, ProductEvent, ProductLatest,
    ProductQuery, ProductUpdate, ProfileUpdate, Reading, RequestQuery, RequestTally,
    ServiceRequest, SessionUser, TokenInfo, User, UserQuery, UserState,
};
use crate::model::{
    AuditEntry, AuditQuery, Confirmed, ContractLine, LinkMail, NewAudit, NewContractLine,
    NewInvitation, NewRegistration, ProductSupplies, QueueEntry, Registration, RegistrationState,
    RequestNote, SeriesPoint, TotpState,
};
use crate::requests::Rules;

/// What the store applies at ingest and on the clock.
#[derive(Debug, Clone)]
pub struct Settings {
    pub filing: FilingPolicy,
    pub rules: Rules,
    /// Write an outbox row for every request change (an external portal is configured).
    pub outbox: bool,
    /// Queue e-mail notifications (SMTP is configured), with links to this
    /// public URL of the portal when given.
    pub email: Option<EmailSettings>,
}

#[derive(Debug, Clone, Default)]
pub struct EmailSettings {
    pub public_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            filing: FilingPolicy::default(),
            rules: Rules::defaults(),
            outbox: false,
            email: None,
        }
    }
}

/// One of the two stores. Every method runs the same code on either.
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Defines each method on `Store` as the same call on whichever backend
/// this is; the methods themselves live in `sql/` (invariant S1).
macro_rules! dispatch {
    ($( $(#[$attr:meta])* $vis:vis async fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        impl Store {
            $(
                $(#[$attr])*
                $vis async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        Store::Sqlite(s) => s.$name($($arg),*).await,
                        Store::Postgres(s) => s.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

impl Store {
    /// Opens the store named by `url`: `postgres://...` or a SQLite file path.
    pub async fn open(url: &str, settings: Settings) -> Result<Store, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(PgStore::open(url, settings).await?))
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            Ok(Store::Sqlite(
                SqliteStore::open(std::path::Path::new(path), settings).await?,
            ))
        }
    }

    /// Connections the pool holds, and how many of them are idle.
    pub fn pool_stats(&self) -> (u32, usize) {
        match self {
            Store::Sqlite(s) => s.pool_stats(),
            Store::Postgres(s) => s.pool_stats(),
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(s) => s.backend(),
            Store::Postgres(s) => s.backend(),
        }
    }
}

// Not formatted by rustfmt (a macro's input): one line per method.
#[rustfmt::skip]
dispatch! {
    pub async fn agent_hello(&self, agent: &str, version: &str, held: u64) -> Result<u64, StoreError>;
    pub async fn ingest(&self, agent: &str, batch: &[meterlink_proto::v1::Observation]) -> Result<IngestOutcome, StoreError>;
    pub async fn tick(&self, now_ms: i64, listening_since_ms: i64) -> Result<RequestTally, StoreError>;
    pub async fn ready(&self) -> Result<(), StoreError>;
    pub async fn products(&self) -> Result<Vec<Product>, StoreError>;
    pub async fn product_page(&self, q: &ProductQuery) -> Result<Page<Product>, StoreError>;
    pub async fn product(&self, serial: &str) -> Result<Option<Product>, StoreError>;
    pub async fn product_events(&self, serial: &str) -> Result<Vec<ProductEvent>, StoreError>;
    pub async fn update_product(&self, serial: &str, u: &ProductUpdate) -> Result<Product, StoreError>;
    pub async fn readings(&self, serial: &str) -> Result<Vec<Reading>, StoreError>;
    pub async fn history(&self, serial: &str, q: &HistoryQuery) -> Result<Vec<Reading>, StoreError>;
    pub async fn product_latest(&self, serial: &str) -> Result<Option<ProductLatest>, StoreError>;
    pub async fn manual_reading(&self, serial: &str, m: &ManualReading, now_ms: i64) -> Result<Reading, StoreError>;
    pub async fn observation(&self, agent: &str, seq: u64) -> Result<Option<meterlink_proto::v1::Observation>, StoreError>;
    pub async fn observation_count(&self, agent: &str) -> Result<u64, StoreError>;
    pub async fn filed_seqs(&self, agent: &str) -> Result<Vec<u64>, StoreError>;
    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError>;
    pub async fn account(&self, id: &str) -> Result<Option<Account>, StoreError>;
    pub async fn put_account(&self, a: &Account) -> Result<Account, StoreError>;
    pub async fn organisations(&self) -> Result<Vec<Organisation>, StoreError>;
    pub async fn organisation(&self, id: &str) -> Result<Option<Organisation>, StoreError>;
    pub async fn put_organisation(&self, o: &Organisation) -> Result<Organisation, StoreError>;
    pub async fn put_user(&self, u: &User) -> Result<User, StoreError>;
    pub async fn put_user_within(&self, u: &User, within: Option<&[String]>) -> Result<User, StoreError>;
    pub async fn add_user_if_absent(&self, u: &User) -> Result<bool, StoreError>;
    pub async fn user(&self, id: &str) -> Result<Option<User>, StoreError>;
    pub async fn users(&self, accounts: Option<&[String]>, q: &UserQuery) -> Result<Vec<User>, StoreError>;
    pub async fn delete_user(&self, id: &str) -> Result<(), StoreError>;
    pub async fn update_profile(&self, user: &str, p: &ProfileUpdate) -> Result<User, StoreError>;
    pub async fn notification_settings(&self, user: &str) -> Result<Vec<NotificationSetting>, StoreError>;
    pub async fn set_notification_settings(&self, user: &User, settings: &[NotificationSetting], visible_products: &[String]) -> Result<Vec<NotificationSetting>, StoreError>;
    pub async fn issue_token(&self, user: &str, label: &str, expires_at_ms: Option<i64>, now_ms: i64) -> Result<IssuedToken, StoreError>;
    pub async fn tokens(&self, user: &str) -> Result<Vec<TokenInfo>, StoreError>;
    pub async fn revoke_token(&self, user: &str, id: &str) -> Result<(), StoreError>;
    pub async fn authenticate(&self, token: &str, now_ms: i64) -> Result<Option<User>, StoreError>;
    pub async fn set_password(&self, user: &str, phc: &str) -> Result<(), StoreError>;
    pub async fn login_user(&self, email: &str) -> Result<Option<(User, Option<String>)>, StoreError>;
    pub async fn password_hash(&self, user: &str) -> Result<Option<String>, StoreError>;
    pub async fn create_session(&self, user: &str, session_sha256: &str, csrf_token: &str, client: &str, now_ms: i64) -> Result<(), StoreError>;
    pub async fn session(&self, session_sha256: &str, now_ms: i64, idle_ms: i64, absolute_ms: i64) -> Result<Option<SessionUser>, StoreError>;
    pub async fn delete_session(&self, session_sha256: &str) -> Result<(), StoreError>;
    pub async fn delete_sessions(&self, user: &str, keep: Option<&str>) -> Result<u64, StoreError>;
    pub async fn login_failures(&self, key: &str, since_ms: i64) -> Result<Vec<i64>, StoreError>;
    pub async fn add_login_failure(&self, keys: &[&str], now_ms: i64, forget_before_ms: i64) -> Result<(), StoreError>;
    pub async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError>;
    pub async fn set_user_state(&self, user: &str, state: UserState) -> Result<User, StoreError>;
    pub async fn request_password_reset(&self, email: &str, link_sha256: &str, link_url: &str, now_ms: i64, expires_at_ms: i64) -> Result<bool, StoreError>;
    pub async fn use_link(&self, link_sha256: &str, purpose: &str, now_ms: i64) -> Result<User, StoreError>;
    pub async fn invite(&self, u: &User, inv: &NewInvitation, inviter: &str, link: &LinkMail) -> Result<User, StoreError>;
    pub async fn resend_invitation(&self, user: &str, inviter: &str, link: &LinkMail) -> Result<User, StoreError>;
    pub async fn accept_invitation(&self, link_sha256: &str, password_phc: &str, now_ms: i64) -> Result<User, StoreError>;
    pub async fn decline_invitation(&self, link_sha256: &str, now_ms: i64) -> Result<User, StoreError>;
    pub async fn register(&self, id: &str, r: &NewRegistration, link: &LinkMail) -> Result<bool, StoreError>;
    pub async fn confirm_registration(&self, link_sha256: &str, password_phc: &str, now_ms: i64) -> Result<Confirmed, StoreError>;
    pub async fn registration(&self, id: &str) -> Result<Option<Registration>, StoreError>;
    pub async fn registrations(&self, state: Option<RegistrationState>) -> Result<Vec<Registration>, StoreError>;
    pub async fn decide_registration(&self, id: &str, approve_into: Option<&str>, by: &str, login_url: Option<&str>, now_ms: i64) -> Result<Registration, StoreError>;
    pub async fn audit(&self, a: &NewAudit, now_ms: i64) -> Result<(), StoreError>;
    pub async fn audit_log(&self, q: &AuditQuery) -> Result<Page<AuditEntry>, StoreError>;
    pub async fn totp_begin(&self, user: &str, secret_b32: &str) -> Result<(), StoreError>;
    pub async fn totp_state(&self, user: &str) -> Result<Option<TotpState>, StoreError>;
    pub async fn totp_spend_step(&self, user: &str, step: i64) -> Result<bool, StoreError>;
    pub async fn totp_enable(&self, user: &str, step: i64, recovery_sha256: &[String]) -> Result<(), StoreError>;
    pub async fn use_recovery_code(&self, user: &str, code_sha256: &str, now_ms: i64) -> Result<bool, StoreError>;
    pub async fn recovery_codes_left(&self, user: &str) -> Result<i64, StoreError>;
    pub async fn totp_disable(&self, user: &str) -> Result<(), StoreError>;
    #[cfg(test)]
    pub(crate) async fn token_rows_text(&self) -> Vec<String>;
    pub async fn agents(&self) -> Result<Vec<AgentInfo>, StoreError>;
    pub async fn agent(&self, id: &str) -> Result<Option<AgentInfo>, StoreError>;
    pub async fn set_agent_account(&self, agent: &str, account: Option<&str>) -> Result<AgentInfo, StoreError>;
    pub async fn set_agent_enabled(&self, agent: &str, enabled: bool) -> Result<AgentInfo, StoreError>;
    pub async fn agent_credential(&self, agent: &str) -> Result<AgentCredential, StoreError>;
    pub async fn agent_credentials(&self) -> Result<Vec<(String, AgentCredential)>, StoreError>;
    pub async fn create_join_token(&self, t: &NewJoinToken, pin_sha256: &str, now_ms: i64) -> Result<IssuedJoinToken, StoreError>;
    pub async fn join_tokens(&self, account: Option<&str>) -> Result<Vec<JoinToken>, StoreError>;
    pub async fn join_token(&self, id: &str) -> Result<Option<JoinToken>, StoreError>;
    pub async fn delete_join_token(&self, id: &str) -> Result<(), StoreError>;
    pub async fn redeem_join_token(&self, token_id: &str, cert: &IssuedCert, now_ms: i64) -> Result<(), StoreError>;
    pub async fn renew_agent_cert(&self, presented: &str, cert: &IssuedCert) -> Result<(), StoreError>;
    pub async fn unassigned(&self) -> Result<Vec<Product>, StoreError>;
    pub async fn groups(&self, accounts: Option<&[String]>) -> Result<Vec<Group>, StoreError>;
    pub async fn create_group(&self, account: &str, name: &str, created_by: Option<&str>) -> Result<Group, StoreError>;
    pub async fn group_administrator(&self, id: i64, user: &str, add: bool) -> Result<Group, StoreError>;
    pub async fn rename_group(&self, id: i64, name: &str) -> Result<Group, StoreError>;
    pub async fn delete_group(&self, id: i64) -> Result<(), StoreError>;
    pub async fn group_member(&self, id: i64, serial: &str, add: bool) -> Result<Group, StoreError>;
    pub async fn requests(&self, q: &RequestQuery) -> Result<Vec<ServiceRequest>, StoreError>;
    pub async fn request(&self, number: &str) -> Result<Option<ServiceRequest>, StoreError>;
    pub async fn create_request(&self, r: &NewRequest, now_ms: i64) -> Result<ServiceRequest, StoreError>;
    pub async fn close_request(&self, number: &str, reason: &str, by: &str, now_ms: i64) -> Result<ServiceRequest, StoreError>;
    pub async fn contract_lines(&self, accounts: Option<&[String]>, admin: Option<&str>, serial: Option<&str>) -> Result<Vec<ContractLine>, StoreError>;
    pub async fn contract_line(&self, id: i64) -> Result<Option<ContractLine>, StoreError>;
    pub async fn put_contract_line(&self, l: &NewContractLine) -> Result<ContractLine, StoreError>;
    pub async fn put_contract_lines(&self, lines: &[NewContractLine]) -> Result<Vec<ContractLine>, StoreError>;
    pub async fn delete_contract_line(&self, id: i64) -> Result<(), StoreError>;
    pub async fn note_request(&self, number: &str, note: &RequestNote, by: &str, operator: bool, now_ms: i64) -> Result<ServiceRequest, StoreError>;
    pub async fn search_articles(&self, q: &ArticleQuery, viewer: ArticleViewer<'_>) -> Result<Vec<ArticleHit>, StoreError>;
    pub async fn article_counts(&self, model: Option<&str>, languages: &[String], viewer: ArticleViewer<'_>) -> Result<std::collections::BTreeMap<String, i64>, StoreError>;
    pub async fn article_categories(&self, model: Option<&str>, languages: &[String], per_kind: i64) -> Result<(Vec<Article>, std::collections::BTreeMap<String, i64>), StoreError>;
    pub async fn article(&self, id: &str, viewer: ArticleViewer<'_>) -> Result<Option<Article>, StoreError>;
    pub async fn product_configuration(&self, serial: &str) -> Result<crate::model::ProductConfiguration, StoreError>;
    pub async fn product_supplies(&self, serial: &str) -> Result<ProductSupplies, StoreError>;
    pub async fn put_article(&self, a: &Article) -> Result<Article, StoreError>;
    pub async fn put_articles(&self, articles: &[Article]) -> Result<Vec<Article>, StoreError>;
    pub async fn delete_article(&self, id: &str) -> Result<bool, StoreError>;
    pub async fn billing(&self, account: &str, year: i32, month: u32) -> Result<Vec<crate::filing::billing::BillingRow>, StoreError>;
    pub async fn outbox_due(&self, now_ms: i64, limit: i64) -> Result<Vec<OutboxItem>, StoreError>;
    pub async fn outbox_claim(&self, id: i64, now_ms: i64, until_ms: i64) -> Result<bool, StoreError>;
    pub async fn outbox_result(&self, id: i64, result: OutboxResult) -> Result<(), StoreError>;
    pub async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError>;
    pub async fn email_due(&self, now_ms: i64, limit: i64) -> Result<Vec<EmailItem>, StoreError>;
    pub async fn email_claim(&self, id: i64, now_ms: i64, until_ms: i64) -> Result<bool, StoreError>;
    pub async fn email_result(&self, id: i64, result: OutboxResult) -> Result<(), StoreError>;
    pub async fn email_counts(&self) -> Result<OutboxCounts, StoreError>;
    pub async fn outbox_entries(&self, state: &str, limit: i64) -> Result<Vec<QueueEntry>, StoreError>;
    pub async fn outbox_retry(&self, id: i64, now_ms: i64) -> Result<bool, StoreError>;
    pub async fn email_entries(&self, state: &str, limit: i64) -> Result<Vec<QueueEntry>, StoreError>;
    pub async fn email_retry(&self, id: i64, now_ms: i64) -> Result<bool, StoreError>;
    pub async fn readings_before(&self, serial: &str, counter: &str, times: &[i64]) -> Result<Vec<Option<(i64, u64)>>, StoreError>;
    pub async fn readings_from(&self, serial: &str, counter: &str, times: &[i64]) -> Result<Vec<Option<(i64, u64)>>, StoreError>;
    pub async fn counter_series(&self, serial: &str, counter: &str, from_ms: i64, to_ms: i64, buckets: u32) -> Result<Vec<SeriesPoint>, StoreError>;
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The environment variable that names the PostgreSQL database tests use.
pub const TEST_DATABASE_ENV: &str = "METERLINK_TEST_DATABASE_URL";

/// For tests: a fresh, empty schema in the PostgreSQL database named by
/// `METERLINK_TEST_DATABASE_URL`, as a URL that uses it; None (after
/// printing a `SKIPPED` line naming `test`) when the variable is not set.
#[doc(hidden)]
pub async fn scratch_postgres(test: &str) -> Option<String> {
    use sqlx::Connection;
    let Ok(base) = std::env::var(TEST_DATABASE_ENV) else {
        // The real stderr: the test harness captures println! and eprintln!
        // of a passing test, which would hide the skip.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED {test} on PostgreSQL: set {TEST_DATABASE_ENV} (e.g. postgres://postgres@127.0.0.1:5432/test)"
        );
        return None;
    };
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let schema = format!(
        "t_{}_{}_{}",
        std::process::id(),
        now_ms(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut c = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("{TEST_DATABASE_ENV}={base}: cannot connect: {e}"));
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut c)
        .await
        .unwrap_or_else(|e| panic!("cannot create schema {schema}: {e}"));
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}

/// For tests and benchmarks: drops the schema `scratch_postgres` made for
/// `url` (a bench's 10 million readings should not stay behind).
#[doc(hidden)]
pub async fn drop_scratch_postgres(url: &str) {
    use sqlx::Connection;
    let Some(schema) = url
        .split_once("search_path%3D")
        .map(|(_, s)| s.split('&').next().unwrap_or(s))
        .filter(|s| {
            s.starts_with("t_") && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
    else {
        return;
    };
    if let Ok(mut c) = sqlx::PgConnection::connect(url).await {
        let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&mut c)
            .await;
    }
}
