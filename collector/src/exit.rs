//! The collector's exit codes, stable for scripts and service managers
//! (README.md lists them), and which failure gets which.

use crate::agents::AgentsError;
use crate::server::StartError;
use crate::store::StoreError;
use crate::users::UserError;

pub const OK: u8 = 0;
/// Anything not below (the runtime, the data directory).
pub const OTHER: u8 = 1;
/// Bad arguments or configuration: fix the command line or collector.toml.
pub const USAGE: u8 = 2;
/// The store cannot be opened or reached, or a newer collector migrated it.
pub const STORE: u8 = 3;
/// Certificates and keys: missing, unreadable, invalid or readable by others.
pub const TLS: u8 = 4;
/// A configured address cannot be listened on (in use, not this host's).
pub const LISTEN: u8 = 5;

pub fn of_start(e: &StartError) -> u8 {
    match e {
        StartError::Config(_) | StartError::Mail(_) => USAGE,
        StartError::Store(e) => of_store(e),
        StartError::Pki(_) | StartError::Tls(_) => TLS,
        StartError::Listen { .. } => LISTEN,
        StartError::DataDir { .. } => OTHER,
    }
}

pub fn of_store(e: &StoreError) -> u8 {
    match e {
        StoreError::Refused { .. } | StoreError::NotFound(_) => USAGE,
        _ => STORE,
    }
}

pub fn of_user(e: &UserError) -> u8 {
    match e {
        UserError::Usage(_) => USAGE,
        UserError::Store(e) => of_store(e),
    }
}

pub fn of_agents(e: &AgentsError) -> u8 {
    match e {
        AgentsError::Store(e) => of_store(e),
        AgentsError::Pki(_) | AgentsError::Tls(_) => TLS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_get_their_codes() {
        let listen = StartError::Listen {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        };
        assert_eq!(of_start(&listen), LISTEN);
        assert_eq!(of_start(&StartError::Tls("no key".into())), TLS);
        let newer = StoreError::SchemaTooNew {
            store: "x.db".into(),
            have: 9,
            known: 5,
        };
        assert_eq!(of_start(&StartError::Store(newer)), STORE);
        assert_eq!(of_user(&UserError::Usage("--role".into())), USAGE);
        let down = StoreError::Db {
            path: "db".into(),
            source: sqlx::Error::PoolTimedOut,
        };
        assert_eq!(of_user(&UserError::Store(down)), STORE);
        let codes = [OK, OTHER, USAGE, STORE, TLS, LISTEN];
        let distinct: std::collections::BTreeSet<u8> = codes.into_iter().collect();
        assert_eq!(distinct.len(), codes.len());
    }
}
