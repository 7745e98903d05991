//! The integration tests, one binary: each module used to link its own copy
//! of the agent, the collector and their dependencies, which cost more build
//! time than the tests take to run.

mod api;
mod backpressure;
mod conformance;
mod crash;
mod e2e;
mod hostile;
mod outage;
mod outbox;
mod profiles;
mod proxy;
mod pushed_config;
mod real_peers;
mod replicas;
mod scenario;
mod sim_faults;
