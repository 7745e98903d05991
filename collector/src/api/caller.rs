//! Who is calling: the bearer-token middleware that resolves the caller,
//! the `Caller` extractor handlers take, and the row checks every handler
//! makes through it (invariant 7, user side).

use super::error::{ApiError, ApiResult};
use super::S;
use crate::auth::Action;
use crate::model::{Group, Product, ProductLatest, Role, ServiceRequest, User};
use crate::store::Store;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The user a request runs as; only routes behind `authenticate` have one.
/// `via`: how they came, as the audit log names it (`person`: a session
/// cookie; `program`: an API token).
pub(crate) struct Caller(pub User, pub &'static str);

/// How the caller authenticated (a request extension).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Via(pub &'static str);

impl std::ops::Deref for Caller {
    type Target = User;
    fn deref(&self) -> &User {
        &self.0
    }
}

impl<St: Send + Sync> FromRequestParts<St> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        let via = parts
            .extensions
            .get::<Via>()
            .map(|v| v.0)
            .unwrap_or("program");
        parts
            .extensions
            .get::<User>()
            .cloned()
            .map(|u| Caller(u, via))
            .ok_or_else(|| ApiError::unauthenticated("unauthenticated", "no caller"))
    }
}

/// The session a cookie-authenticated request runs in (its id's SHA-256).
#[derive(Clone, Debug)]
pub(crate) struct SessionId(pub String);

/// Resolves the caller from `Authorization: Bearer <token>` (programs) or
/// the session cookie (people); every /api/v1 route but logging in runs
/// behind it. A cookie-authenticated write must carry the session's CSRF
/// token in `X-CSRF-Token`. A user who is not active (suspended, say) is
/// refused whichever way they come.
pub(crate) async fn authenticate(State(s): S, mut req: Request, next: Next) -> Response {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_string());
    let now = crate::store::now_ms();
    let mut via = "program";
    let user = if let Some(token) = bearer {
        match s.authenticate(&token, now).await {
            Ok(Some(u)) => u,
            Ok(None) => {
                return ApiError::unauthenticated(
                    "invalid_token",
                    "the API token is unknown, revoked or expired: ask for a new one",
                )
                .into_response()
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    } else if let Some(id) = super::sessions::cookie_session(req.headers()) {
        let cfg = req
            .extensions()
            .get::<crate::auth::password::Sessions>()
            .cloned()
            .unwrap_or_default();
        let sha = crate::token::hash_secret(&id);
        let found = match s.session(&sha, now, cfg.idle_ms, cfg.absolute_ms).await {
            Ok(f) => f,
            Err(e) => return ApiError::from(e).into_response(),
        };
        let Some(found) = found else {
            return ApiError::unauthenticated(
                "session_expired",
                "the session has ended (logged out, or idle too long): log in again",
            )
            .into_response();
        };
        let safe = matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
        let given = req
            .headers()
            .get(super::sessions::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !safe && !crate::token::same_hash(given, &found.csrf_token) {
            return ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "csrf",
                "a change made with the session cookie needs the session's CSRF token in X-CSRF-Token",
            )
            .into_response();
        }
        req.extensions_mut().insert(SessionId(sha));
        via = "person";
        found.user
    } else {
        return ApiError::unauthenticated(
            "unauthenticated",
            "log in (POST /api/v1/sessions) or give an API token as \
             `Authorization: Bearer <token>` (`meterlink-collector user token ID` issues one)",
        )
        .into_response();
    };
    if user.state != crate::model::UserState::Active {
        return super::sessions::not_active(&user).into_response();
    }
    req.extensions_mut().insert(user);
    req.extensions_mut().insert(Via(via));
    next.run(req).await
}

impl Caller {
    /// Who the audit log names for this caller's changes.
    pub(crate) fn actor(&self) -> crate::model::Actor {
        crate::model::Actor {
            kind: self.1.to_string(),
            id: self.id.clone(),
        }
    }

    /// 403 unless the caller's role allows `a`.
    pub(crate) fn need(&self, a: Action, what: &str) -> ApiResult<()> {
        if self.may(a) {
            Ok(())
        } else {
            Err(ApiError::forbidden(self, what))
        }
    }

    /// The companies a list is filtered by: the one asked for, if the
    /// caller sees it (another's answers not found), or every one the
    /// caller sees; None: all (an operator asking for none).
    pub(crate) fn scoped_accounts(&self, asked: Option<String>) -> ApiResult<Option<Vec<String>>> {
        match (self.confined_to(), asked) {
            (None, asked) => Ok(asked.map(|a| vec![a])),
            (Some(_), Some(a)) if !self.sees_account(&a) => {
                Err(ApiError::not_found(format!("account {a:?}")))
            }
            (Some(_), Some(a)) => Ok(Some(vec![a])),
            (Some(own), None) => Ok(Some(own.to_vec())),
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

    /// A product's latest values, when the caller may see the product.
    pub(crate) async fn product_latest(&self, s: &Store, serial: &str) -> ApiResult<ProductLatest> {
        match s.product_latest(serial).await? {
            Some(p) if self.sees_product_of(p.account.as_deref(), &p.administrators) => Ok(p),
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

    /// A group the caller may change: of their companies for account
    /// managers, their own for product administrators.
    pub(crate) async fn group(&self, s: &Store, id: i64) -> ApiResult<Group> {
        self.need(Action::ManageGroups, "groups")?;
        s.groups(self.confined_to())
            .await?
            .into_iter()
            .find(|g| g.id == id && self.sees_group(g))
            .ok_or_else(|| ApiError::not_found(format!("group {id}")))
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
