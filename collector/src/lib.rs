//! meterlink collector: gRPC ingest with mutual TLS, the store, the REST API.

pub mod api;
pub mod config;
pub mod ingest;
pub mod pki;
pub mod server;
pub mod store;
