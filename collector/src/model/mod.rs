//! The domain's types: what the store hands out and takes in, what the
//! access policy judges and what the REST API sends as JSON. A leaf: it
//! depends on no other module of the crate (invariant C1).

mod account;
mod configuration;
mod contract;
mod enrollment;
mod entitlement;
mod ingest;
mod kb;
mod outbox;
mod people;
mod product;
mod request;
mod user;

pub use account::{Account, AgentInfo, Group, Organisation};
pub use configuration::{
    configuration_changes, Component, ProductConfiguration, ProductSupplies, SupplyLevel,
};
pub use contract::{
    parse_csv as parse_contract_csv, ContractLine, NewContractLine, CONTRACT_KINDS,
};
pub use enrollment::{
    valid_agent_id, AgentCredential, IssuedCert, IssuedJoinToken, JoinToken, NewJoinToken,
};
pub use entitlement::{Coverage, Entitlements};
pub use ingest::{without_nul, IngestOutcome, RequestTally};
pub use kb::{
    download_url, normal_code, search_languages, search_words, text_search_config, url_part,
    Article, ArticleHit, ArticleQuery, ArticleViewer, ARTICLE_KINDS, ARTICLE_LANGUAGES,
};
pub use outbox::{EmailItem, OutboxCounts, OutboxItem, OutboxResult, QueueEntry};
pub use people::{
    Actor, AuditEntry, AuditQuery, Confirmed, LinkMail, NewAudit, NewInvitation, NewRegistration,
    Registration, RegistrationState,
};
pub use product::{
    HistoryQuery, ManualReading, Page, Product, ProductEvent, ProductLatest, ProductQuery,
    ProductUpdate, Reading, SeriesPoint,
};
pub use request::{
    NewRequest, RequestEvent, RequestNote, RequestQuery, ServiceRequest, REQUEST_STATUSES,
};
pub use user::{
    IssuedToken, NotificationSetting, ProfileUpdate, Role, SessionUser, TokenInfo, TotpState, User,
    UserQuery, UserState, NOTIFICATION_EVENTS,
};
