//! CustomerSignal's domain: the events it ingests, the rule language it evaluates, and the
//! `AlertRule` / `Source` resources that declare both, in a cluster or in standalone YAML.
//!
//! Every other crate (ingest, evaluator, operator) speaks in these types, so their meaning is
//! defined once, here, and tested here without any server.

#[cfg(feature = "service")]
pub mod clickhouse_args;
pub mod duration;
pub mod event;
pub mod intake;
pub mod keyring;
pub mod resources;
pub mod rule;
pub mod secrets;
#[cfg(feature = "service")]
pub mod service;
pub mod standalone;
pub mod subject;
pub mod validation;
