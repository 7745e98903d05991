//! Users and tokens.

use super::*;

pub(super) fn user(
    id: &str,
    role: crate::model::Role,
    account: Option<&str>,
) -> crate::model::User {
    crate::model::User::new(id, &format!("User {id}"), role, account)
}

fn ids(users: Vec<crate::model::User>) -> Vec<String> {
    users.into_iter().map(|u| u.id).collect()
}

/// A caller who sees no company at all.
const NO_COMPANY: &[String] = &[];

fn acme() -> Vec<String> {
    vec!["acme".to_string()]
}

async fn users_and_tokens(s: Store) {
    use crate::model::Role;
    account(&s, "acme", true).await;
    account(&s, "globex", true).await;
    // Roles and accounts go together.
    for (bad, code) in [
        (user("o", Role::Operator, Some("acme")), "invalid_user"),
        (user("m", Role::AccountManager, None), "invalid_user"),
        (
            user("m", Role::AccountManager, Some("nowhere")),
            "account_not_found",
        ),
        (user("two words", Role::Operator, None), "invalid_user_id"),
    ] {
        match s.put_user(&bad).await {
            Err(StoreError::Refused { code: c, .. }) => assert_eq!(c.code(), code, "{bad:?}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    let pat = user("pat", Role::ProductAdministrator, Some("acme"));
    let pat = s.put_user(&pat).await.unwrap();
    assert_eq!(
        (pat.organisation.as_deref(), pat.sees.clone()),
        (Some("acme"), acme())
    );
    s.put_user(&user("ops", Role::Operator, None))
        .await
        .unwrap();
    let all = UserQuery::default();
    assert_eq!(
        ids(s.users(Some(&acme()), &all).await.unwrap()),
        vec!["pat"]
    );
    assert!(s.users(Some(NO_COMPANY), &all).await.unwrap().is_empty());
    assert_eq!(s.users(None, &all).await.unwrap().len(), 2);

    // A token authenticates its user; its secret is not stored.
    let t = s.issue_token("pat", "laptop", None, T0).await.unwrap();
    assert_eq!(
        s.authenticate(&t.token, T0).await.unwrap(),
        Some(pat.clone())
    );
    let (_, secret) = crate::token::parse_token(&t.token).unwrap();
    let rows = s.token_rows_text().await;
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].contains(secret), "{rows:?}");
    // The same id with another secret does not.
    let forged = format!(
        "{}{}_{}",
        crate::token::TOKEN_PREFIX,
        t.info.id,
        "0".repeat(64)
    );
    assert_eq!(s.authenticate(&forged, T0).await.unwrap(), None);
    assert_eq!(s.authenticate("not a token", T0).await.unwrap(), None);

    // Expiry.
    let short = s
        .issue_token("pat", "short", Some(T0 + MIN), T0 + 1)
        .await
        .unwrap();
    assert!(s.authenticate(&short.token, T0).await.unwrap().is_some());
    assert_eq!(s.authenticate(&short.token, T0 + MIN).await.unwrap(), None);
    assert_eq!(
        s.tokens("pat")
            .await
            .unwrap()
            .iter()
            .map(|t| t.label.as_str())
            .collect::<Vec<_>>(),
        vec!["laptop", "short"]
    );

    // Revoked.
    s.revoke_token("pat", &t.info.id).await.unwrap();
    assert_eq!(s.authenticate(&t.token, T0).await.unwrap(), None);
    assert!(matches!(
        s.revoke_token("pat", &t.info.id).await,
        Err(StoreError::NotFound(_))
    ));

    // A product's administrator is a user of its account.
    s.agent_hello("agent-u", "0.1.0", 1).await.unwrap();
    s.set_agent_account("agent-u", Some("acme")).await.unwrap();
    s.ingest("agent-u", &[meter(1, "U-1", T0, 100)])
        .await
        .unwrap();
    let admin = |who: &str| ProductUpdate {
        administrators: Some(vec![who.into()]),
        ..Default::default()
    };
    s.update_product("U-1", &admin("pat")).await.unwrap();
    s.put_user(&user("gus", Role::ProductAdministrator, Some("globex")))
        .await
        .unwrap();
    // Replacing a user only within an account leaves another account's alone.
    let grab = user("gus", Role::AccountManager, Some("acme"));
    match s.put_user_within(&grab, Some(&acme())).await {
        Err(StoreError::Refused { code, .. }) => assert_eq!(code, Refusal::UserIdTaken),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.user("gus").await.unwrap().and_then(|u| u.account),
        Some("globex".into())
    );
    s.put_user_within(
        &user("pat", Role::ProductAdministrator, Some("acme")),
        Some(&acme()),
    )
    .await
    .unwrap();
    for who in ["gus", "nobody", "ops"] {
        match s.update_product("U-1", &admin(who)).await {
            Err(StoreError::Refused { code, .. }) => {
                assert_eq!(code, Refusal::InvalidAdministrator)
            }
            other => panic!("{who}: {other:?}"),
        }
    }
    assert_eq!(
        s.product("U-1").await.unwrap().unwrap().administrators,
        vec!["pat".to_string()]
    );
    // Moving the product to another account leaves its administrator behind.
    let moved = s
        .update_product(
            "U-1",
            &ProductUpdate {
                account: Some("globex".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(moved.administrators.is_empty());
    s.update_product("U-1", &admin("gus")).await.unwrap();

    // Removing a user takes their tokens and their products' administrator field.
    let g = s.issue_token("gus", "", None, T0).await.unwrap();
    s.delete_user("gus").await.unwrap();
    assert_eq!(s.authenticate(&g.token, T0).await.unwrap(), None);
    assert!(s
        .product("U-1")
        .await
        .unwrap()
        .unwrap()
        .administrators
        .is_empty());
    assert!(s.tokens("gus").await.unwrap().is_empty());
}
on_both!(users_and_tokens);

/// Sessions end after their idle or absolute time (and are deleted then);
/// e-mail addresses are stored lower case, valid and unique.
async fn sessions_and_emails(s: Store) {
    use crate::model::Role;
    account(&s, "acme", true).await;
    let mut mia = user("mia", Role::AccountManager, Some("acme"));
    mia.email = Some(" Mia@Example.com ".into());
    assert_eq!(
        s.put_user(&mia).await.unwrap().email.as_deref(),
        Some("mia@example.com")
    );
    let mut copy = user("mia2", Role::AccountManager, Some("acme"));
    copy.email = Some("MIA@example.com".into());
    assert!(matches!(
        s.put_user(&copy).await,
        Err(StoreError::Refused {
            code: Refusal::EmailTaken,
            ..
        })
    ));
    copy.email = Some("not an address".into());
    assert!(matches!(
        s.put_user(&copy).await,
        Err(StoreError::Refused {
            code: Refusal::InvalidEmail,
            ..
        })
    ));
    assert!(s.login_user("MIA@EXAMPLE.COM").await.unwrap().is_some());
    let (idle, absolute) = (30 * 60_000, 12 * 3_600_000);
    let t0 = 1_800_000_000_000;
    s.create_session("mia", "h1", "c1", "127.0.0.1", t0)
        .await
        .unwrap();
    let found = s
        .session("h1", t0 + 29 * 60_000, idle, absolute)
        .await
        .unwrap();
    assert_eq!(found.map(|f| f.csrf_token), Some("c1".to_string()));
    // Seen at t0 + 29 min: idle counts from then.
    assert!(s
        .session("h1", t0 + 58 * 60_000, idle, absolute)
        .await
        .unwrap()
        .is_some());
    assert!(s
        .session("h1", t0 + 90 * 60_000, idle, absolute)
        .await
        .unwrap()
        .is_none());
    assert!(
        s.session("h1", t0 + 58 * 60_000, idle, absolute)
            .await
            .unwrap()
            .is_none(),
        "deleted"
    );
    // Kept busy, it still ends at its absolute time.
    s.create_session("mia", "h2", "c2", "", t0).await.unwrap();
    let mut t = t0;
    while t < t0 + absolute - 20 * 60_000 {
        t += 20 * 60_000;
        assert!(s.session("h2", t, idle, absolute).await.unwrap().is_some());
    }
    assert!(s
        .session("h2", t0 + absolute + 1, idle, absolute)
        .await
        .unwrap()
        .is_none());
    // Removing the user ends their sessions.
    s.create_session("mia", "h3", "c3", "", t0).await.unwrap();
    s.delete_user("mia").await.unwrap();
    assert!(s.session("h3", t0, idle, absolute).await.unwrap().is_none());
}

on_both!(sessions_and_emails);
