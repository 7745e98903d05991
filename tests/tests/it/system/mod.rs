//! The whole system, agent to collector: end to end, an outage, pushed
//! configuration, a scripted day, backpressure, crashes.

mod backpressure;
mod crash;
mod e2e;
mod outage;
mod pushed_config;
mod scenario;
