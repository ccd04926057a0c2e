//! The event catalog: per tenant, source and event, each property with its observed JSON
//! type(s). A batch is folded into one row per (event, property, type) before it is written,
//! so the catalog costs rows per distinct shape, not per event.

use super::rows::EventRow;
use chrono::{DateTime, Utc};
use clickhouse::Row;
use model::event::{Event, EventKind, json_type_name};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct CatalogRow {
    pub tenant: String,
    pub source: String,
    pub event: String,
    /// Property (for identify/group: trait) name; empty for the event itself.
    pub property: String,
    pub json_type: String,
    #[serde(with = "clickhouse::serde::chrono::datetime")]
    pub first_seen: DateTime<Utc>,
    #[serde(with = "clickhouse::serde::chrono::datetime")]
    pub last_seen: DateTime<Utc>,
    pub events: u64,
}

type Key = (String, String, String, String, &'static str);

#[derive(Debug, Default)]
pub struct CatalogBatch {
    entries: BTreeMap<Key, (DateTime<Utc>, DateTime<Utc>, u64)>,
}

/// The catalog's name for an event: its name, or its kind for unnamed calls.
fn event_name(event: &Event) -> String {
    match (&event.name, event.kind) {
        (Some(name), _) => name.clone(),
        (None, kind) => kind.as_str().to_string(),
    }
}

impl CatalogBatch {
    /// `row` is the event's stored row, for its clamped time.
    pub fn add(&mut self, event: &Event, row: &EventRow) {
        let name = event_name(event);
        let seen = row.event_time;
        let mut note = |property: &str, json_type: &'static str| {
            let key = (
                event.tenant.clone(),
                event.source.clone(),
                name.clone(),
                property.to_string(),
                json_type,
            );
            let entry = self.entries.entry(key).or_insert((seen, seen, 0));
            entry.0 = entry.0.min(seen);
            entry.1 = entry.1.max(seen);
            entry.2 += 1;
        };
        note("", event.kind.as_str());
        let members = match event.kind {
            EventKind::Identify | EventKind::Group => &event.traits,
            _ => &event.properties,
        };
        for (property, value) in members {
            note(property, json_type_name(value));
        }
    }

    pub fn into_rows(self) -> Vec<CatalogRow> {
        self.entries
            .into_iter()
            .map(
                |((tenant, source, event, property, json_type), (first, last, events))| {
                    CatalogRow {
                        tenant,
                        source,
                        event,
                        property,
                        json_type: json_type.into(),
                        first_seen: first,
                        last_seen: last,
                        events,
                    }
                },
            )
            .collect()
    }
}
