//! Registrations: a person asks for access with serial numbers of products
//! under contract; a link e-mailed to them confirms it. The first person of
//! the organisation the serials belong to becomes its account manager;
//! anyone else (or no match) waits for an operator.

use crate::model::{
    Confirmed, LinkMail, NewRegistration, Registration, RegistrationState, Role, User, UserState,
};
use crate::store::{Refusal, StoreError};
use sqlx::{QueryBuilder, Row};

use super::rows::{in_list, Tx};
use super::{Backend, Db};

const COLS: &str = "registration_id, company_name, first_name, last_name, email, phone, serials, \
     language, state, account_id, created_at_ms, confirmed_at_ms, decided_at_ms, decided_by, user_id";

fn registration_from(r: &<Db as sqlx::Database>::Row) -> Option<Registration> {
    Some(Registration {
        id: r.get(0),
        company_name: r.get(1),
        first_name: r.get(2),
        last_name: r.get(3),
        email: r.get(4),
        phone: r.get(5),
        serials: serde_json::from_str(r.get::<&str, _>(6)).unwrap_or_default(),
        language: r.get(7),
        state: RegistrationState::parse(r.get::<&str, _>(8))?,
        account: r.get(9),
        created_at_ms: r.get(10),
        confirmed_at_ms: r.get(11),
        decided_at_ms: r.get(12),
        decided_by: r.get(13),
        user: r.get(14),
    })
}

fn invalid(what: impl Into<String>) -> StoreError {
    StoreError::refused(Refusal::InvalidRegistration, what)
}

impl Backend {
    /// Records a registration and queues its confirmation message. An
    /// address that is a user's already, or waits in another registration,
    /// gets nothing (the answer to the person is the same: no one learns
    /// who is registered). True when a message was queued.
    pub async fn register(
        &self,
        id: &str,
        r: &NewRegistration,
        link: &LinkMail,
    ) -> Result<bool, StoreError> {
        let field = |name: &str, v: &str, max: usize| {
            if v.trim().is_empty() || v.chars().count() > max {
                Err(invalid(format!("{name}: give 1 to {max} characters")))
            } else {
                Ok(())
            }
        };
        field("company_name", &r.company_name, 200)?;
        field("first_name", &r.first_name, 100)?;
        field("last_name", &r.last_name, 100)?;
        field("phone", &r.phone, 40)?;
        let serials: Vec<String> = r
            .serials
            .iter()
            .map(|s| s.trim().to_uppercase())
            .filter(|s| !s.is_empty())
            .collect();
        if serials.is_empty() || serials.len() > 50 || serials.iter().any(|s| s.len() > 64) {
            return Err(invalid(
                "serials: give at least one serial number of a product under contract (at most 50)",
            ));
        }
        let language = r.language.clone().unwrap_or_else(|| "en".into());
        if !["en", "it"].contains(&language.as_str()) {
            return Err(invalid(format!(
                "language {language:?}: the portal speaks en and it"
            )));
        }
        let email = super::users::valid_email(&r.email)?;
        let taken: Option<String> = sqlx::query_scalar(
            "SELECT user_id FROM users WHERE email = $1
             UNION SELECT registration_id FROM registrations
             WHERE email = $1 AND state IN ('unconfirmed', 'queued') AND link_expires_at_ms > $2",
        )
        .bind(&email)
        .bind(link.now_ms)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        if taken.is_some() {
            return Ok(false);
        }
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO registrations (registration_id, company_name, first_name, last_name, email, phone,
             serials, language, state, link_sha256, link_expires_at_ms, created_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'unconfirmed', $9, $10, $11)",
        )
        .bind(id)
        .bind(r.company_name.trim())
        .bind(r.first_name.trim())
        .bind(r.last_name.trim())
        .bind(&email)
        .bind(r.phone.trim())
        .bind(serde_json::to_string(&serials).unwrap_or_else(|_| "[]".into()))
        .bind(&language)
        .bind(&link.sha256)
        .bind(link.expires_at_ms)
        .bind(link.now_ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        let url = format!(
            "{}/register/confirm?token={}",
            link.base_url.trim_end_matches('/'),
            link.token
        );
        let hours = ((link.expires_at_ms - link.now_ms) / 3_600_000).max(1);
        let m =
            crate::notify::confirmation_email(&email, r.first_name.trim(), &language, &url, hours);
        self.queue_email(&mut tx, &m, link.now_ms).await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(true)
    }

    /// Follows a confirmation link: the registration becomes the
    /// organisation's account manager (active, with this password) when its
    /// serials match a company whose organisation has none; otherwise it
    /// waits for an operator. The link works once.
    pub async fn confirm_registration(
        &self,
        link_sha256: &str,
        password_phc: &str,
        now: i64,
    ) -> Result<Confirmed, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "UPDATE registrations SET state = 'queued', confirmed_at_ms = $1, password_hash = $2
             WHERE link_sha256 = $3 AND state = 'unconfirmed' AND link_expires_at_ms > $1
             RETURNING {COLS}"
        ))
        .bind(now)
        .bind(password_phc)
        .bind(link_sha256)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        let Some(reg) = row.as_ref().and_then(registration_from) else {
            return Err(StoreError::refused(
                Refusal::LinkInvalid,
                "the confirmation link is unknown, was used already or has expired: register again",
            ));
        };
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT p.account_id, a.organisation_id FROM products p JOIN accounts a ON a.account_id = p.account_id
             WHERE p.serial IN ",
        );
        in_list(&mut qb, reg.serials.iter().map(String::as_str));
        qb.push(" ORDER BY p.account_id");
        let matched = qb
            .build()
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let matched: Vec<(String, String)> = matched.iter().map(|r| (r.get(0), r.get(1))).collect();
        let one_organisation = matched.windows(2).all(|w| w[0].1 == w[1].1);
        let account = matched.first().map(|m| m.0.clone());
        sqlx::query("UPDATE registrations SET account_id = $1 WHERE registration_id = $2")
            .bind(&account)
            .bind(&reg.id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let mut user = None;
        if let (Some((account, organisation)), true) = (matched.first(), one_organisation) {
            let managed: Option<String> = sqlx::query_scalar(
                "SELECT u.user_id FROM users u JOIN accounts a ON a.account_id = u.account_id
                 WHERE a.organisation_id = $1 AND u.role = 'account_manager'",
            )
            .bind(organisation)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            if managed.is_none() {
                let u = self
                    .approve_in(&mut tx, &reg, account, "automatic", now)
                    .await?;
                user = Some(u);
            }
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        let registration = self
            .registration(&reg.id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("registration {:?}", reg.id)))?;
        let user = match user {
            Some(id) => self.user(&id).await?,
            None => None,
        };
        Ok(Confirmed { registration, user })
    }

    /// Makes the registrant the account manager of `account`, active with
    /// the password they chose; answers the new user's id.
    async fn approve_in(
        &self,
        tx: &mut Tx,
        reg: &Registration,
        account: &str,
        by: &str,
        now: i64,
    ) -> Result<String, StoreError> {
        let id = format!("u-{}", reg.id.trim_start_matches("r-"));
        let mut u = User::new(
            &id,
            &format!("{} {}", reg.first_name, reg.last_name),
            Role::AccountManager,
            Some(account),
        );
        u.email = Some(reg.email.clone());
        u.first_name = reg.first_name.clone();
        u.last_name = reg.last_name.clone();
        u.phone = reg.phone.clone();
        u.language = reg.language.clone();
        u.state = UserState::Active;
        let email = self.check_user(&u).await?;
        self.write_user(tx, &u, email, None).await?;
        sqlx::query(
            "UPDATE users SET password_hash = (SELECT password_hash FROM registrations WHERE registration_id = $1)
             WHERE user_id = $2",
        )
        .bind(&reg.id)
        .bind(&id)
        .execute(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        sqlx::query(
            "UPDATE registrations SET state = 'approved', account_id = $1, decided_at_ms = $2,
             decided_by = $3, user_id = $4, password_hash = NULL WHERE registration_id = $5",
        )
        .bind(account)
        .bind(now)
        .bind(by)
        .bind(&id)
        .bind(&reg.id)
        .execute(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        Ok(id)
    }

    pub async fn registration(&self, id: &str) -> Result<Option<Registration>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLS} FROM registrations WHERE registration_id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(row.as_ref().and_then(registration_from))
    }

    /// Registrations in `state` (all when None), oldest first.
    pub async fn registrations(
        &self,
        state: Option<RegistrationState>,
    ) -> Result<Vec<Registration>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM registrations WHERE $1 IS NULL OR state = $1
             ORDER BY created_at_ms, registration_id LIMIT 1000"
        ))
        .bind(state.map(|s| s.as_str()))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows.iter().filter_map(registration_from).collect())
    }

    /// An operator's decision on a queued registration: approved as the
    /// account manager of `account`, or rejected; the registrant is told.
    pub async fn decide_registration(
        &self,
        id: &str,
        approve_into: Option<&str>,
        by: &str,
        login_url: Option<&str>,
        now: i64,
    ) -> Result<Registration, StoreError> {
        let reg = self
            .registration(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("registration {id:?}")))?;
        if reg.state != RegistrationState::Queued {
            return Err(StoreError::refused(
                Refusal::RegistrationNotQueued,
                format!(
                    "registration {id:?} is {}: only a confirmed registration waiting for an operator is decided",
                    reg.state.as_str()
                ),
            ));
        }
        let mut tx = self.begin_write().await?;
        match approve_into {
            Some(account) => {
                if self.account(account).await?.is_none() {
                    return Err(StoreError::refused(
                        Refusal::AccountNotFound,
                        format!("no account {account:?}: create it first"),
                    ));
                }
                self.approve_in(&mut tx, &reg, account, by, now).await?;
            }
            None => {
                sqlx::query(
                    "UPDATE registrations SET state = 'rejected', decided_at_ms = $1, decided_by = $2,
                     password_hash = NULL WHERE registration_id = $3",
                )
                .bind(now)
                .bind(by)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            }
        }
        let name = format!("{} {}", reg.first_name, reg.last_name);
        let m = crate::notify::decision_email(
            &reg.email,
            &name,
            &reg.language,
            approve_into.is_some(),
            login_url,
        );
        self.queue_email(&mut tx, &m, now).await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        self.registration(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("registration {id:?}")))
    }
}
