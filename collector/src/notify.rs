//! E-mail notifications: who is told of a service request's change and
//! what the message says, in the recipient's language (English, Italian).
//! Pure: a leaf over the model (the store writes the messages into the
//! e-mail outbox in the transaction of the change; `mailer` sends them).

use crate::model::{NotificationSetting, Role, ServiceRequest, User, UserState};

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub user: String,
    pub subject: String,
    pub body: String,
}

/// The request events people are told of.
pub fn notifies(event: &str) -> bool {
    matches!(event, "opened" | "updated" | "closed")
}

/// The notification event (`NOTIFICATION_EVENTS`) a request's `event` is.
pub fn topic(r: &ServiceRequest, event: &str) -> Option<&'static str> {
    match (r.kind.as_str(), event) {
        ("meter_due", "opened") => Some("meter_reading_due"),
        ("consumables", "opened") => Some("consumables"),
        (_, "opened") => Some("request_opened"),
        (_, "updated") => Some("request_updated"),
        (_, "closed") => Some("request_closed"),
        _ => None,
    }
}

/// Whether a person's `settings` let `topic` through for the product
/// `serial` (in the groups `product_groups`).
pub fn wants(
    settings: &[NotificationSetting],
    topic: &str,
    serial: Option<&str>,
    product_groups: &[i64],
) -> bool {
    let Some(s) = settings.iter().find(|s| s.event == topic) else {
        return true;
    };
    s.enabled
        && ((s.products.is_empty() && s.groups.is_empty())
            || serial.is_some_and(|p| s.products.iter().any(|x| x == p))
            || s.groups.iter().any(|g| product_groups.contains(g)))
}

/// Whether `u` (a person who sees the request's company) hears of `r`:
/// active, with an address, and an account manager or an administrator of
/// its product (`admins`).
pub fn recipient(u: &User, r: &ServiceRequest, admins: &[String]) -> bool {
    u.state == UserState::Active
        && u.email.is_some()
        && u.account.is_some()
        && r.account.is_some()
        && match u.role {
            Role::AccountManager => true,
            Role::ProductAdministrator => admins.contains(&u.id),
            Role::Operator => false,
        }
}

/// The message for `u` about `event` of `r`, in `u`'s language;
/// `public_url` is where the portal is reached (links in the message).
pub fn request_email(
    u: &User,
    r: &ServiceRequest,
    event: &str,
    public_url: Option<&str>,
) -> Option<Email> {
    let to = u.email.clone()?;
    let language = u.language.as_str();
    let product = r.serial.as_deref().unwrap_or("-");
    let link = public_url
        .map(|base| format!("{}/requests/{}", base.trim_end_matches('/'), r.number))
        .unwrap_or_default();
    let (subject, intro, see) = match (language, event) {
        ("it", "opened") => (
            format!("Richiesta di assistenza {} aperta: {}", r.number, r.title),
            "è stata aperta una richiesta di assistenza",
            "Dettagli",
        ),
        ("it", "updated") => (
            format!(
                "Richiesta di assistenza {} aggiornata: {}",
                r.number, r.title
            ),
            "è stata aggiornata una richiesta di assistenza",
            "Dettagli",
        ),
        (_, "updated") => (
            format!("Service request {} updated: {}", r.number, r.title),
            "a service request was updated",
            "Details",
        ),
        ("it", _) => (
            format!("Richiesta di assistenza {} chiusa: {}", r.number, r.title),
            "è stata chiusa una richiesta di assistenza",
            "Dettagli",
        ),
        (_, "opened") => (
            format!("Service request {} opened: {}", r.number, r.title),
            "a service request was opened",
            "Details",
        ),
        _ => (
            format!("Service request {} closed: {}", r.number, r.title),
            "a service request was closed",
            "Details",
        ),
    };
    let (hello, product_word) = if language == "it" {
        ("Buongiorno", "Prodotto")
    } else {
        ("Hello", "Product")
    };
    let mut body = format!(
        "{hello} {},\n\n{intro}:\n\n  {}  {}\n  {product_word}: {product}\n",
        u.name, r.number, r.title
    );
    if !link.is_empty() {
        body.push_str(&format!("\n{see}: {link}\n"));
    }
    body.push_str("\n-- \nmeterlink\n");
    Some(Email {
        to,
        user: u.id.clone(),
        subject,
        body,
    })
}

/// The password-reset message for `u` with its single-use `link`, valid
/// for `minutes`.
pub fn reset_email(u: &User, link: &str, minutes: i64) -> Option<Email> {
    let to = u.email.clone()?;
    let (subject, body) = if u.language == "it" {
        (
            "Reimpostare la password di meterlink".to_string(),
            format!(
                "Buongiorno {},\n\nper scegliere una nuova password aprire questo collegamento entro {minutes} minuti (vale una volta sola):\n\n{link}\n\nSe non è stata chiesta, ignorare questo messaggio: la password resta quella di prima.\n\n-- \nmeterlink\n",
                u.name
            ),
        )
    } else {
        (
            "Reset your meterlink password".to_string(),
            format!(
                "Hello {},\n\nto choose a new password open this link within {minutes} minutes (it works once):\n\n{link}\n\nIf you did not ask for it, ignore this message: your password stays as it was.\n\n-- \nmeterlink\n",
                u.name
            ),
        )
    };
    Some(Email {
        to,
        user: u.id.clone(),
        subject,
        body,
    })
}

/// The invitation for `u` (pending) from `inviter`, with the links to
/// accept (choosing a password) and to decline, valid for `days`.
pub fn invitation_email(
    u: &User,
    inviter: &str,
    accept: &str,
    decline: &str,
    days: i64,
) -> Option<Email> {
    let to = u.email.clone()?;
    let role_it = match u.role {
        Role::AccountManager => "Account Manager",
        _ => "Product Administrator",
    };
    let (subject, body) = if u.language == "it" {
        (
            format!("{inviter} la invita nel portale meterlink"),
            format!(
                "Buongiorno {},\n\n{inviter} la invita a usare il portale meterlink come {role_it}.\n\nPer accettare e scegliere la password (entro {days} giorni):\n{accept}\n\nPer rifiutare:\n{decline}\n\n-- \nmeterlink\n",
                u.name
            ),
        )
    } else {
        (
            format!("{inviter} invites you to the meterlink portal"),
            format!(
                "Hello {},\n\n{inviter} invites you to the meterlink portal as {role_it}.\n\nTo accept and choose your password (within {days} days):\n{accept}\n\nTo decline:\n{decline}\n\n-- \nmeterlink\n",
                u.name
            ),
        )
    };
    Some(Email {
        to,
        user: u.id.clone(),
        subject,
        body,
    })
}

/// The message confirming a registration: the link that completes it.
pub fn confirmation_email(to: &str, name: &str, language: &str, link: &str, hours: i64) -> Email {
    let (subject, body) = if language == "it" {
        (
            "Completare la registrazione a meterlink".to_string(),
            format!(
                "Buongiorno {name},\n\nper completare la registrazione e scegliere la password aprire questo collegamento entro {hours} ore (vale una volta sola):\n\n{link}\n\nSe non si è registrati, ignorare questo messaggio.\n\n-- \nmeterlink\n"
            ),
        )
    } else {
        (
            "Complete your meterlink registration".to_string(),
            format!(
                "Hello {name},\n\nto complete your registration and choose your password open this link within {hours} hours (it works once):\n\n{link}\n\nIf you did not register, ignore this message.\n\n-- \nmeterlink\n"
            ),
        )
    };
    Email {
        to: to.to_string(),
        user: String::new(),
        subject,
        body,
    }
}

/// An operator's decision on a registration that waited for one.
pub fn decision_email(
    to: &str,
    name: &str,
    language: &str,
    approved: bool,
    login: Option<&str>,
) -> Email {
    let login = login.map(|l| format!("\n\n{l}")).unwrap_or_default();
    let (subject, body) = match (language, approved) {
        ("it", true) => (
            "Registrazione a meterlink approvata".to_string(),
            format!("Buongiorno {name},\n\nla registrazione è stata approvata: ora è possibile accedere con il proprio indirizzo e la password scelta.{login}\n\n-- \nmeterlink\n"),
        ),
        ("it", false) => (
            "Registrazione a meterlink non approvata".to_string(),
            format!("Buongiorno {name},\n\nla registrazione non è stata approvata. Per informazioni contattare l'assistenza.\n\n-- \nmeterlink\n"),
        ),
        (_, true) => (
            "Your meterlink registration is approved".to_string(),
            format!("Hello {name},\n\nyour registration is approved: you can now log in with your address and the password you chose.{login}\n\n-- \nmeterlink\n"),
        ),
        (_, false) => (
            "Your meterlink registration was not approved".to_string(),
            format!("Hello {name},\n\nyour registration was not approved. Please contact the helpdesk to know more.\n\n-- \nmeterlink\n"),
        ),
    };
    Email {
        to: to.to_string(),
        user: String::new(),
        subject,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, role: Role, email: Option<&str>) -> User {
        let mut u = User::new(id, &format!("Name {id}"), role, Some("acme"));
        u.email = email.map(Into::into);
        u
    }

    fn request() -> ServiceRequest {
        ServiceRequest {
            number: "SR-000042".into(),
            account: Some("acme".into()),
            serial: Some("2KM01234".into()),
            priority: "high".into(),
            title: "E602-0001: hard disk error".into(),
            ..ServiceRequest::example()
        }
    }

    #[test]
    fn account_managers_and_the_products_administrator_hear_of_requests() {
        let r = request();
        let mia = user("mia", Role::AccountManager, Some("mia@example.com"));
        let pat = user("pat", Role::ProductAdministrator, Some("pat@example.com"));
        assert!(recipient(&mia, &r, &[]));
        assert!(!recipient(&pat, &r, &[]));
        assert!(recipient(&pat, &r, &["ann".into(), "pat".into()]));
        assert!(
            !recipient(&user("x", Role::AccountManager, None), &r, &[]),
            "no address"
        );
        let mut away = mia.clone();
        away.state = UserState::Suspended;
        assert!(!recipient(&away, &r, &[]));
        assert!(notifies("opened") && notifies("closed") && !notifies("occurrence"));
    }

    #[test]
    fn settings_turn_events_off_or_narrow_them_to_products_and_groups() {
        let mut r = request();
        assert_eq!(topic(&r, "opened"), Some("request_opened"));
        assert_eq!(topic(&r, "occurrence"), None);
        r.kind = "meter_due".into();
        assert_eq!(topic(&r, "opened"), Some("meter_reading_due"));
        assert_eq!(topic(&r, "closed"), Some("request_closed"));
        let set = |enabled, products: &[&str], groups: &[i64]| NotificationSetting {
            event: "request_opened".into(),
            enabled,
            products: products.iter().map(|p| p.to_string()).collect(),
            groups: groups.to_vec(),
        };
        assert!(wants(&[], "request_opened", Some("A1"), &[]), "default on");
        assert!(!wants(
            &[set(false, &[], &[])],
            "request_opened",
            Some("A1"),
            &[]
        ));
        assert!(wants(
            &[set(false, &[], &[])],
            "request_closed",
            Some("A1"),
            &[]
        ));
        assert!(wants(&[set(true, &[], &[])], "request_opened", None, &[]));
        let some = [set(true, &["A1"], &[7])];
        assert!(wants(&some, "request_opened", Some("A1"), &[]));
        assert!(!wants(&some, "request_opened", Some("A2"), &[3]));
        assert!(wants(&some, "request_opened", Some("A2"), &[3, 7]));
        assert!(!wants(&some, "request_opened", None, &[]));
    }

    #[test]
    fn messages_are_in_the_recipients_language_with_a_link() {
        let r = request();
        let mia = user("mia", Role::AccountManager, Some("mia@example.com"));
        let en = request_email(&mia, &r, "opened", Some("https://portal.example.com/")).unwrap();
        assert_eq!(
            en.subject,
            "Service request SR-000042 opened: E602-0001: hard disk error"
        );
        assert!(en.body.contains("Product: 2KM01234"), "{}", en.body);
        assert!(
            en.body
                .contains("https://portal.example.com/requests/SR-000042"),
            "{}",
            en.body
        );
        let mut gio = mia.clone();
        gio.language = "it".into();
        let it = request_email(&gio, &r, "closed", None).unwrap();
        assert!(
            it.subject
                .starts_with("Richiesta di assistenza SR-000042 chiusa"),
            "{}",
            it.subject
        );
        assert!(it.body.starts_with("Buongiorno Name mia"), "{}", it.body);
        assert!(
            !it.body.contains("Dettagli"),
            "no link without a public URL"
        );
    }
}
