//! Who is calling: the bearer-token middleware that resolves the caller,
//! the `Caller` extractor handlers take, and the row checks every handler
//! makes through it (invariant 7, user side).

use super::error::{ApiError, ApiResult};
use super::S;
use crate::auth::Action;
use crate::model::{Product, Role, ServiceRequest, User};
use crate::store::Store;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The user a request runs as; only routes behind `authenticate` have one.
pub(crate) struct Caller(pub User);

impl std::ops::Deref for Caller {
    type Target = User;
    fn deref(&self) -> &User {
        &self.0
    }
}

impl<St: Send + Sync> FromRequestParts<St> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<User>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| ApiError::unauthenticated("unauthenticated", "no caller"))
    }
}

/// Resolves the caller from `Authorization: Bearer <token>`; every
/// /api/v1 route runs behind it.
pub(crate) async fn authenticate(State(s): S, mut req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_string());
    let Some(token) = given else {
        return ApiError::unauthenticated(
            "unauthenticated",
            "give an API token as `Authorization: Bearer <token>` \
             (`meterlink-collector user token ID` issues one)",
        )
        .into_response();
    };
    match s.authenticate(&token, crate::store::now_ms()).await {
        Ok(Some(u)) => {
            req.extensions_mut().insert(u);
            next.run(req).await
        }
        Ok(None) => ApiError::unauthenticated(
            "invalid_token",
            "the API token is unknown, revoked or expired: ask for a new one",
        )
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

impl Caller {
    /// 403 unless the caller's role allows `a`.
    pub(crate) fn need(&self, a: Action, what: &str) -> ApiResult<()> {
        if self.may(a) {
            Ok(())
        } else {
            Err(ApiError::forbidden(self, what))
        }
    }

    /// The account a list is filtered by: the one asked for, confined to the
    /// caller's (another account's name answers not found).
    pub(crate) fn scoped_account(&self, asked: Option<String>) -> ApiResult<Option<String>> {
        match (self.confined_to(), asked) {
            (None, asked) => Ok(asked),
            (Some(own), Some(a)) if a != own => Err(ApiError::not_found(format!("account {a:?}"))),
            (Some(own), _) => Ok(Some(own.to_string())),
        }
    }

    /// 404 unless the caller sees the account.
    pub(crate) fn account_in_reach(&self, id: &str) -> ApiResult<()> {
        if self.sees_account(id) {
            Ok(())
        } else {
            Err(ApiError::not_found(format!("account {id:?}")))
        }
    }

    /// The product, when the caller may see it.
    pub(crate) async fn product(&self, s: &Store, serial: &str) -> ApiResult<Product> {
        match s.product(serial).await? {
            Some(p) if self.sees_product(&p) => Ok(p),
            _ => Err(ApiError::not_found(format!("product {serial:?}"))),
        }
    }

    /// The request, when the caller may see it.
    pub(crate) async fn request(&self, s: &Store, number: &str) -> ApiResult<ServiceRequest> {
        let not_found = || ApiError::not_found(format!("service request {number:?}"));
        let r = s.request(number).await?.ok_or_else(not_found)?;
        let product = match (&r.serial, self.role) {
            (Some(serial), Role::ProductAdministrator) => s.product(serial).await?,
            _ => None,
        };
        if self.sees_request(&r, product.as_ref()) {
            Ok(r)
        } else {
            Err(not_found())
        }
    }

    /// A group of the caller's account (groups are managed by account managers).
    pub(crate) async fn group(&self, s: &Store, id: i64) -> ApiResult<()> {
        self.need(Action::ManageGroups, "groups")?;
        if s.groups(self.confined_to())
            .await?
            .iter()
            .any(|g| g.id == id)
        {
            Ok(())
        } else {
            Err(ApiError::not_found(format!("group {id}")))
        }
    }

    /// The user `id`, when the caller may see them.
    pub(crate) async fn user(&self, s: &Store, id: &str) -> ApiResult<User> {
        match s.user(id).await? {
            Some(u) if self.sees_user(&u) => Ok(u),
            _ => Err(ApiError::not_found(format!("user {id:?}"))),
        }
    }

    /// A user whose tokens the caller may list, issue and revoke: themselves,
    /// or a user they manage.
    pub(crate) async fn token_owner(&self, s: &Store, id: &str) -> ApiResult<User> {
        let u = self.user(s, id).await?;
        if u.id == self.id || self.may_write_user(&u) {
            Ok(u)
        } else {
            Err(ApiError::forbidden(self, "tokens of another user"))
        }
    }
}
