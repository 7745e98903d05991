use super::*;

/// A user as the store resolves them: seeing their own company.
fn user(id: &str, role: Role, account: Option<&str>) -> User {
    let mut u = User::new(id, id, role, account);
    u.sees = account.map(|a| vec![a.to_string()]).unwrap_or_default();
    u
}

fn operator() -> User {
    user("ops", Role::Operator, None)
}
fn manager() -> User {
    user("mia", Role::AccountManager, Some("acme"))
}
fn administrator() -> User {
    user("pat", Role::ProductAdministrator, Some("acme"))
}

fn product(serial: &str, account: Option<&str>, admin: Option<&str>) -> Product {
    Product {
        serial: serial.into(),
        account: account.map(Into::into),
        administrators: admin.map(Into::into).into_iter().collect(),
        ..Default::default()
    }
}

#[test]
fn who_sees_which_product() {
    let cases = [
        // (product, operator, account manager of acme, administrator pat of acme)
        (product("A1", Some("acme"), Some("pat")), true, true, true),
        (product("A2", Some("acme"), None), true, true, false),
        (
            product("A3", Some("acme"), Some("someone")),
            true,
            true,
            false,
        ),
        // pat administers it, but in another account: not theirs.
        (
            product("B1", Some("globex"), Some("pat")),
            true,
            false,
            false,
        ),
        (product("B2", Some("globex"), None), true, false, false),
        // Unassigned devices are the operator's.
        (product("U1", None, None), true, false, false),
        (product("U2", None, Some("pat")), true, false, false),
    ];
    for (p, op, am, pa) in cases {
        assert_eq!(operator().sees_product(&p), op, "operator, {}", p.serial);
        assert_eq!(manager().sees_product(&p), am, "manager, {}", p.serial);
        assert_eq!(
            administrator().sees_product(&p),
            pa,
            "administrator, {}",
            p.serial
        );
    }
}

#[test]
fn a_customer_user_without_an_account_sees_nothing() {
    let orphan = user("x", Role::AccountManager, None);
    assert!(!orphan.sees_product(&product("U1", None, None)));
    assert!(!orphan.sees_account("acme"));
    assert!(operator().sees_account("acme"));
    assert!(manager().sees_account("acme"));
    assert!(!manager().sees_account("globex"));
}

#[test]
fn actions_by_role() {
    use Action::*;
    let all = [
        ManageAccounts,
        ManageFleet,
        ManageKnowledgeBase,
        SeeAgents,
        Billing,
        ManageGroups,
        ManageUsers,
        EnrollAgents,
        AssignAdministrators,
        SeeAudit,
    ];
    for a in all {
        assert!(operator().may(a), "{a:?}");
        // Their own groups only (sees_group).
        assert_eq!(administrator().may(a), a == ManageGroups, "{a:?}");
        let am = !matches!(a, ManageAccounts | ManageFleet | ManageKnowledgeBase);
        assert_eq!(manager().may(a), am, "{a:?}");
    }
}

fn request(account: Option<&str>, serial: Option<&str>) -> ServiceRequest {
    ServiceRequest {
        account: account.map(Into::into),
        serial: serial.map(Into::into),
        ..ServiceRequest::example()
    }
}

#[test]
fn who_sees_which_request() {
    let mine = product("A1", Some("acme"), Some("pat"));
    let other = product("A2", Some("acme"), None);
    let cases = [
        (request(Some("acme"), Some("A1")), Some(&mine), true, true),
        (request(Some("acme"), Some("A2")), Some(&other), true, false),
        // An account-level request (no product): the manager's only.
        (request(Some("acme"), None), None, true, false),
        // The product given does not match the request's: refused.
        (request(Some("acme"), Some("A2")), Some(&mine), true, false),
        (request(Some("globex"), Some("B1")), None, false, false),
        (request(None, Some("U1")), None, false, false),
    ];
    for (r, p, am, pa) in cases {
        assert!(operator().sees_request(&r, p));
        assert_eq!(manager().sees_request(&r, p), am, "{r:?}");
        assert_eq!(administrator().sees_request(&r, p), pa, "{r:?}");
    }
}

#[test]
fn who_sees_and_writes_which_user() {
    let mia2 = user("mia2", Role::AccountManager, Some("acme"));
    let other = user("gus", Role::ProductAdministrator, Some("globex"));
    let ops2 = user("ops2", Role::Operator, None);
    assert!(manager().sees_user(&administrator()));
    assert!(manager().sees_user(&mia2));
    assert!(!manager().sees_user(&other));
    assert!(!manager().sees_user(&ops2));
    assert!(administrator().sees_user(&administrator()));
    assert!(!administrator().sees_user(&manager()));
    assert!(operator().sees_user(&other));

    assert!(manager().may_write_user(&administrator()));
    assert!(!manager().may_write_user(&other));
    assert!(!manager().may_write_user(&ops2));
    assert!(!administrator().may_write_user(&administrator()));
    assert!(operator().may_write_user(&ops2));
}

#[test]
fn product_fields_by_role() {
    let u = |f: &str| {
        let mut u = ProductUpdate::default();
        match f {
            "account" => u.account = Some("x".into()),
            "alt_name" => u.alt_name = Some("x".into()),
            "site_address" => u.site_address = Some("x".into()),
            "location" => u.location = Some("x".into()),
            "administrators" => u.administrators = Some(vec!["x".into()]),
            "emaintenance" => u.emaintenance = Some(true),
            "billing_day" => u.billing_day = Some(1),
            "entitlements" => u.entitlements = Some(Default::default()),
            _ => unreachable!(),
        }
        u
    };
    // (field, account manager may, product administrator may)
    let cases = [
        ("account", false, false),
        ("alt_name", true, true),
        ("location", true, true),
        ("site_address", true, false),
        ("administrators", true, false),
        ("emaintenance", false, false),
        ("billing_day", false, false),
        ("entitlements", false, false),
    ];
    for (f, am, pa) in cases {
        assert!(operator().refused_fields(&u(f)).is_empty(), "{f}");
        assert_eq!(manager().refused_fields(&u(f)).is_empty(), am, "{f}");
        assert_eq!(administrator().refused_fields(&u(f)).is_empty(), pa, "{f}");
    }
}

#[test]
fn organisation_companies_bound_what_a_user_sees() {
    // mia of the organisation holding acme and acme-north sees both;
    // rob, scoped to acme-north, only that one.
    let mut mia = user("mia", Role::AccountManager, Some("acme"));
    mia.sees = vec!["acme".into(), "acme-north".into()];
    let mut rob = user("rob", Role::AccountManager, Some("acme-north"));
    rob.companies = Some(vec!["acme-north".into()]);
    rob.sees = vec!["acme-north".into()];
    let north = product("N1", Some("acme-north"), None);
    let south = product("S1", Some("acme"), None);
    assert!(mia.sees_product(&north) && mia.sees_product(&south));
    assert!(rob.sees_product(&north) && !rob.sees_product(&south));
    assert!(!rob.sees_request(&request(Some("acme"), None), None));
    // rob may not make a user who sees more than he does.
    let mut wide = user("new", Role::ProductAdministrator, Some("acme-north"));
    assert!(!rob.may_write_user(&wide));
    wide.companies = Some(vec!["acme-north".into(), "acme".into()]);
    assert!(!rob.may_write_user(&wide));
    wide.companies = Some(vec!["acme-north".into()]);
    assert!(rob.may_write_user(&wide));
    assert!(mia.may_write_user(&wide));
}

#[test]
fn who_sees_which_group() {
    let g = |account: &str, by: Option<&str>| Group {
        id: 1,
        account: account.into(),
        name: "g".into(),
        products: Vec::new(),
        administrators: Vec::new(),
        created_by: by.map(Into::into),
    };
    assert!(manager().sees_group(&g("acme", None)));
    assert!(manager().sees_group(&g("acme", Some("pat"))));
    assert!(!manager().sees_group(&g("globex", None)));
    assert!(administrator().sees_group(&g("acme", Some("pat"))));
    assert!(!administrator().sees_group(&g("acme", None)));
    assert!(!administrator().sees_group(&g("globex", Some("pat"))));
}
