//! What the store and API benches set up alike: a fresh store (a SQLite file
//! in a temporary folder, or a new schema in the PostgreSQL given) and the
//! REST API served from it on loopback.

use meterlink_collector::store::{Settings, Store};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// A fresh store: `dir/<file>` on SQLite, or a new schema in `postgres`
/// (named after `bench`, dropped by [`drop_store`]). Its URL and the store.
pub(crate) async fn open_store(
    postgres: Option<&str>,
    bench: &str,
    dir: &Path,
    file: &str,
) -> (String, Arc<Store>) {
    let url = match postgres {
        Some(base) => {
            std::env::set_var(meterlink_collector::store::TEST_DATABASE_ENV, base);
            meterlink_collector::store::scratch_postgres(bench)
                .await
                .expect("a PostgreSQL schema")
        }
        None => dir.join(file).display().to_string(),
    };
    let store = Arc::new(Store::open(&url, Settings::default()).await.expect("store"));
    (url, store)
}

/// Drops a PostgreSQL store's schema; a SQLite file goes with its folder.
pub(crate) async fn drop_store(url: &str) {
    if url.starts_with("postgres") {
        meterlink_collector::store::drop_scratch_postgres(url).await;
    }
}

/// The REST API of `store` on a free loopback port.
pub(crate) async fn serve_api(store: &Arc<Store>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(meterlink_collector::api::serve(
        listener,
        store.clone(),
        Arc::new(meterlink_collector::metrics::Metrics::new()),
    ));
    addr
}
