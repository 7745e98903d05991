//! The integration tests, one binary (one link instead of one per file),
//! grouped by component: `agent`, `collector`, and `system` for what spans
//! both. `architecture` checks the module graph ARCHITECTURE.md states;
//! `deploy` the systemd units and example configurations in deploy/;
//! `packages` the Debian packages, installed and run; `containers` the
//! container images and the compose file.

mod agent;
mod architecture;
mod collector;
mod containers;
mod deploy;
mod packages;
mod system;
