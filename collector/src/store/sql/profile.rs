//! A person's own settings: personal data and which events they hear of.

use crate::model::{NotificationSetting, ProfileUpdate, User, NOTIFICATION_EVENTS};
use crate::store::{Refusal, StoreError};
use sqlx::Row;

use super::{Backend, Db};

type Conn = <Db as sqlx::Database>::Connection;

impl Backend {
    pub async fn update_profile(&self, user: &str, p: &ProfileUpdate) -> Result<User, StoreError> {
        let Some(mut u) = self.user(user).await? else {
            return Err(StoreError::NotFound(format!("user {user:?}")));
        };
        // The lengths are checked where every user is written (`check_user`).
        if p.name.as_ref().is_some_and(|n| n.trim().is_empty()) {
            return Err(StoreError::refused(
                Refusal::InvalidUser,
                "name: give the name people see",
            ));
        }
        if let Some(v) = &p.name {
            u.name = v.trim().to_string();
        }
        if let Some(v) = &p.first_name {
            u.first_name = v.trim().to_string();
        }
        if let Some(v) = &p.last_name {
            u.last_name = v.trim().to_string();
        }
        if let Some(v) = &p.phone {
            u.phone = v.trim().to_string();
        }
        if let Some(v) = &p.language {
            u.language = v.clone();
        }
        self.put_user(&u).await
    }

    pub async fn notification_settings(
        &self,
        user: &str,
    ) -> Result<Vec<NotificationSetting>, StoreError> {
        let mut c = self.pool.acquire().await.map_err(|e| self.err(e))?;
        self.notification_settings_in(&mut c, user).await
    }

    /// As `notification_settings`, on a connection (a transaction's).
    pub(super) async fn notification_settings_in(
        &self,
        c: &mut Conn,
        user: &str,
    ) -> Result<Vec<NotificationSetting>, StoreError> {
        let rows = sqlx::query(
            "SELECT event, enabled, products, groups_json FROM notification_settings
             WHERE user_id = $1 ORDER BY event",
        )
        .bind(user)
        .fetch_all(&mut *c)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| NotificationSetting {
                event: r.get(0),
                enabled: r.get::<i64, _>(1) != 0,
                products: serde_json::from_str(r.get::<&str, _>(2)).unwrap_or_default(),
                groups: serde_json::from_str(r.get::<&str, _>(3)).unwrap_or_default(),
            })
            .collect())
    }

    /// Replaces the settings of the events named; the products must be
    /// ones the person sees and the groups ones of their companies.
    pub async fn set_notification_settings(
        &self,
        user: &User,
        settings: &[NotificationSetting],
        visible_products: &[String],
    ) -> Result<Vec<NotificationSetting>, StoreError> {
        let groups = self.groups(Some(&user.sees)).await?;
        for s in settings {
            if !NOTIFICATION_EVENTS.contains(&s.event.as_str()) {
                return Err(StoreError::refused(
                    Refusal::InvalidNotification,
                    format!(
                        "event {:?}: give one of {}",
                        s.event,
                        NOTIFICATION_EVENTS.join(", ")
                    ),
                ));
            }
            if let Some(p) = s.products.iter().find(|p| !visible_products.contains(p)) {
                return Err(StoreError::refused(
                    Refusal::InvalidNotification,
                    format!("product {p:?}: name a product you see"),
                ));
            }
            if let Some(g) = s
                .groups
                .iter()
                .find(|g| !groups.iter().any(|x| x.id == **g))
            {
                return Err(StoreError::refused(
                    Refusal::InvalidNotification,
                    format!("group {g}: name a group of your companies"),
                ));
            }
        }
        let mut tx = self.begin_write().await?;
        for s in settings {
            sqlx::query(
                "INSERT INTO notification_settings (user_id, event, enabled, products, groups_json)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, event) DO UPDATE SET
                 enabled = excluded.enabled, products = excluded.products, groups_json = excluded.groups_json",
            )
            .bind(&user.id)
            .bind(&s.event)
            .bind(s.enabled as i64)
            .bind(serde_json::to_string(&s.products).unwrap_or_else(|_| "[]".into()))
            .bind(serde_json::to_string(&s.groups).unwrap_or_else(|_| "[]".into()))
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        self.notification_settings(&user.id).await
    }
}
