//! Contract lines per company; a product's eMaintenance flag follows the
//! eMaintenance lines that run today.

use crate::model::{ContractLine, NewContractLine};
use crate::store::{Refusal, StoreError};
use sqlx::{QueryBuilder, Row};

use super::rows::{administered_by, within_accounts, Tx};
use super::{Backend, Db};

const COLS: &str =
    "line_id, account_id, contract_number, item, serial, service, kind, starts_on, ends_on";

fn line_from(r: &<Db as sqlx::Database>::Row) -> ContractLine {
    ContractLine {
        id: r.get(0),
        line: NewContractLine {
            account: r.get(1),
            contract_number: r.get(2),
            item: r.get(3),
            serial: r.get(4),
            service: r.get(5),
            kind: r.get(6),
            starts_on: r.get(7),
            ends_on: r.get(8),
        },
    }
}

fn today() -> String {
    day_of(chrono::Utc::now().timestamp_millis())
}

/// The UTC date of `ms` as contract lines write dates.
fn day_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

/// Whether an eMaintenance line of the product's company runs on day $1.
const EMAINTENANCE_RUNS: &str = "CASE WHEN EXISTS (
    SELECT 1 FROM contract_lines c WHERE c.serial = products.serial
    AND c.account_id = products.account_id AND c.kind = 'emaintenance'
    AND c.starts_on <= $1 AND (c.ends_on IS NULL OR c.ends_on >= $1)) THEN 1 ELSE 0 END";

impl Backend {
    /// Lines of these companies (all when None), of the products `admin`
    /// administers when given; by company, contract and item.
    pub async fn contract_lines(
        &self,
        accounts: Option<&[String]>,
        admin: Option<&str>,
        serial: Option<&str>,
    ) -> Result<Vec<ContractLine>, StoreError> {
        let mut qb =
            QueryBuilder::<Db>::new(format!("SELECT {COLS} FROM contract_lines WHERE 1 = 1"));
        within_accounts(&mut qb, "account_id", accounts);
        if let Some(u) = admin {
            qb.push(" AND serial IN ");
            administered_by(&mut qb, u);
        }
        if let Some(s) = serial {
            qb.push(" AND serial = ").push_bind(s);
        }
        qb.push(" ORDER BY account_id, contract_number, item LIMIT 10000");
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(line_from).collect())
    }

    pub async fn contract_line(&self, id: i64) -> Result<Option<ContractLine>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLS} FROM contract_lines WHERE line_id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(row.as_ref().map(line_from))
    }

    /// Writes one line (see `put_contract_lines`).
    pub async fn put_contract_line(&self, l: &NewContractLine) -> Result<ContractLine, StoreError> {
        let mut written = self.put_contract_lines(std::slice::from_ref(l)).await?;
        // One line in, one line written (or an error above).
        written.pop().ok_or_else(|| {
            StoreError::refused(Refusal::InvalidContractLine, "no contract line was given")
        })
    }

    /// Writes lines (new, or replacing the one with the same company,
    /// contract and item) in one transaction: all or none.
    pub async fn put_contract_lines(
        &self,
        lines: &[NewContractLine],
    ) -> Result<Vec<ContractLine>, StoreError> {
        let mut checked = Vec::with_capacity(lines.len());
        for l in lines {
            checked.push(
                l.checked()
                    .map_err(|m| StoreError::refused(Refusal::InvalidContractLine, m))?,
            );
        }
        let mut tx = self.begin_write().await?;
        let mut ids = Vec::with_capacity(checked.len());
        let mut serials: Vec<String> = Vec::new();
        for l in &checked {
            let known: Option<String> =
                sqlx::query_scalar("SELECT account_id FROM accounts WHERE account_id = $1")
                    .bind(&l.account)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
            if known.is_none() {
                return Err(StoreError::refused(
                    Refusal::AccountNotFound,
                    format!("no account {:?}: create it first", l.account),
                ));
            }
            if let Some(s) = &l.serial {
                let owner: Option<Option<String>> =
                    sqlx::query_scalar("SELECT account_id FROM products WHERE serial = $1")
                        .bind(s)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(|e| self.err(e))?;
                if owner
                    .as_ref()
                    .is_some_and(|o| o.as_deref() != Some(l.account.as_str()))
                {
                    return Err(StoreError::refused(
                        Refusal::ProductOfAnotherAccount,
                        format!(
                            "product {s:?} belongs to another account than {:?}",
                            l.account
                        ),
                    ));
                }
                serials.push(s.clone());
            }
            // The old line's product may lose its eMaintenance line.
            let was: Option<Option<String>> = sqlx::query_scalar(
                "SELECT serial FROM contract_lines WHERE account_id = $1 AND contract_number = $2 AND item = $3",
            )
            .bind(&l.account)
            .bind(&l.contract_number)
            .bind(&l.item)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            serials.extend(was.flatten());
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO contract_lines (account_id, contract_number, item, serial, service, kind, starts_on, ends_on)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (account_id, contract_number, item) DO UPDATE SET serial = excluded.serial,
                 service = excluded.service, kind = excluded.kind, starts_on = excluded.starts_on,
                 ends_on = excluded.ends_on
                 RETURNING line_id",
            )
            .bind(&l.account)
            .bind(&l.contract_number)
            .bind(&l.item)
            .bind(&l.serial)
            .bind(&l.service)
            .bind(&l.kind)
            .bind(&l.starts_on)
            .bind(&l.ends_on)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            ids.push(id);
        }
        self.emaintenance_follows(&mut tx, &serials).await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(l) = self.contract_line(id).await? {
                out.push(l);
            }
        }
        Ok(out)
    }

    pub async fn delete_contract_line(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let serial: Option<Option<String>> =
            sqlx::query_scalar("DELETE FROM contract_lines WHERE line_id = $1 RETURNING serial")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        let Some(serial) = serial else {
            return Err(StoreError::NotFound(format!("contract line {id}")));
        };
        self.emaintenance_follows(&mut tx, &serial.into_iter().collect::<Vec<_>>())
            .await?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Sets each product's eMaintenance flag to whether an eMaintenance
    /// line of its company runs today.
    async fn emaintenance_follows(
        &self,
        tx: &mut Tx,
        serials: &[String],
    ) -> Result<(), StoreError> {
        let day = today();
        for s in serials {
            sqlx::query(&format!(
                "UPDATE products SET emaintenance = {EMAINTENANCE_RUNS} WHERE serial = $2"
            ))
            .bind(&day)
            .bind(s)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// On the clock: products with eMaintenance lines follow the lines that
    /// run on `now`'s date (a line's start or end passed). Writes only the
    /// products whose flag changes.
    pub(super) async fn emaintenance_on(&self, now: i64) -> Result<u64, StoreError> {
        let n = sqlx::query(&format!(
            "UPDATE products SET emaintenance = {EMAINTENANCE_RUNS}
             WHERE serial IN (SELECT serial FROM contract_lines WHERE kind = 'emaintenance' AND serial IS NOT NULL)
             AND emaintenance <> {EMAINTENANCE_RUNS}"
        ))
        .bind(day_of(now))
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .rows_affected();
        Ok(n)
    }
}
