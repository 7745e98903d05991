//! Organisations (customers) and the companies they hold; the companies
//! given to a user (what they see is read with them: `rows::USER_COLS`).

use crate::model::{Organisation, User};
use crate::store::{Refusal, StoreError};
use sqlx::Row;

use super::rows::Tx;
use super::Backend;

impl Backend {
    /// Every organisation with its companies, by id.
    pub async fn organisations(&self) -> Result<Vec<Organisation>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.organisation_id, o.name, a.account_id FROM organisations o
             LEFT JOIN accounts a ON a.organisation_id = o.organisation_id
             ORDER BY o.organisation_id, a.account_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let mut out: Vec<Organisation> = Vec::new();
        for r in rows {
            let id: String = r.get(0);
            if out.last().is_none_or(|o| o.id != id) {
                out.push(Organisation {
                    id,
                    name: r.get(1),
                    companies: Vec::new(),
                });
            }
            if let (Some(o), Some(a)) = (out.last_mut(), r.get::<Option<String>, _>(2)) {
                o.companies.push(a);
            }
        }
        Ok(out)
    }

    pub async fn organisation(&self, id: &str) -> Result<Option<Organisation>, StoreError> {
        Ok(self.organisations().await?.into_iter().find(|o| o.id == id))
    }

    /// Creates or renames an organisation.
    pub async fn put_organisation(&self, o: &Organisation) -> Result<Organisation, StoreError> {
        if o.id.is_empty() || o.id.len() > 64 || o.id.contains(char::is_whitespace) {
            return Err(StoreError::refused(
                Refusal::InvalidOrganisationId,
                "an organisation id is 1 to 64 characters without spaces",
            ));
        }
        if o.name.trim().is_empty() {
            return Err(StoreError::refused(
                Refusal::InvalidOrganisationName,
                "give the organisation a name",
            ));
        }
        sqlx::query(
            "INSERT INTO organisations (organisation_id, name) VALUES ($1, $2)
             ON CONFLICT (organisation_id) DO UPDATE SET name = excluded.name",
        )
        .bind(&o.id)
        .bind(o.name.trim())
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        self.organisation(&o.id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("organisation {:?}", o.id)))
    }

    /// Whether company `a` is in company `b`'s organisation.
    pub(super) async fn same_organisation(
        &self,
        tx: &mut Tx,
        a: &str,
        b: &str,
    ) -> Result<bool, StoreError> {
        let same: Option<String> = sqlx::query_scalar(
            "SELECT a.account_id FROM accounts a JOIN accounts h ON h.organisation_id = a.organisation_id
             WHERE a.account_id = $1 AND h.account_id = $2",
        )
        .bind(a)
        .bind(b)
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        Ok(same.is_some())
    }

    /// Writes the companies `u` is given, each one of the organisation of
    /// `u`'s company (checked), inside the user's write.
    pub(super) async fn write_companies(&self, tx: &mut Tx, u: &User) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM user_companies WHERE user_id = $1")
            .bind(&u.id)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        let (Some(companies), Some(home)) = (&u.companies, &u.account) else {
            return Ok(());
        };
        for c in companies {
            if !self.same_organisation(tx, c, home).await? {
                return Err(StoreError::refused(
                    Refusal::InvalidCompanies,
                    format!("company {c:?} is not one of the organisation of {home:?}"),
                ));
            }
            sqlx::query(
                "INSERT INTO user_companies (user_id, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(&u.id)
            .bind(c)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}
