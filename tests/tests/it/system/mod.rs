//! The whole system, agent to collector: end to end, an outage, pushed
//! configuration, a scripted day, backpressure, crashes, scheduled discovery,
//! a faulty network between agent and collector.

mod backpressure;
mod crash;
mod demo;
mod discovery;
mod e2e;
mod enrollment;
mod faulty_network;
mod outage;
mod pushed_config;
mod scenario;
