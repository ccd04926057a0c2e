//! `evaluator backtest`: runs the live rule engine over stored history with a simulated
//! clock and reports when each rule would have fired and resolved. Sends nothing.
//!
//! Events before `from` only fill windows (the longest window back); from `from` on, the
//! clock advances to each event's time, with a tick every simulated minute in between, as
//! the live evaluator ticks every second.

use crate::engine::Engine;
use crate::store::history;
use model::rule::Notification;
use model::standalone::Catalog;

/// Simulated time between ticks.
const TICK_MS: u64 = 60_000;

/// Stored events read per profile lookup.
const CHUNK: usize = 5_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub tenant: String,
    pub rule: String,
    pub group: String,
    pub notification: Notification,
    pub at_ms: u64,
    pub value: Option<f64>,
}

pub async fn run(
    client: &clickhouse::Client,
    catalog: &Catalog,
    from_ms: u64,
    to_ms: u64,
) -> anyhow::Result<Vec<Finding>> {
    let mut findings = Vec::new();
    for source in &catalog.sources {
        let rules: Vec<_> = catalog
            .rules_for(&source.tenant, &source.name)
            .map(|r| r.compiled.clone())
            .collect();
        let Some(longest) = rules.iter().map(|r| r.window).max() else {
            continue;
        };
        let mut engine = Engine::new(rules);
        let warm_from = from_ms.saturating_sub(longest.as_millis() as u64);
        let mut cursor = history::events(client, &source.tenant, &source.name, warm_from, to_ms)?;
        let mut clock = from_ms;
        let note = |transitions: Vec<crate::engine::Transition>, findings: &mut Vec<Finding>| {
            findings.extend(transitions.into_iter().filter_map(|t| {
                Some(Finding {
                    tenant: source.tenant.clone(),
                    rule: t.rule,
                    group: t.group,
                    notification: t.change.notification?,
                    at_ms: t.at_ms,
                    value: t.value,
                })
            }));
        };
        let mut chunk = Vec::with_capacity(CHUNK);
        loop {
            let row = cursor.next().await?;
            let done = row.is_none();
            if let Some(row) = row {
                let at = row.event_time_ms();
                chunk.push((at, row.into_event(&source.tenant, &source.name).0));
            }
            if chunk.len() < CHUNK && !done {
                continue;
            }
            // As live: the profiles these events need are loaded before they count.
            let events: Vec<_> = chunk.iter().map(|(_, e)| e).collect();
            engine.load_profiles(client, &source.tenant, &events).await;
            for (at, event) in chunk.drain(..) {
                if at < from_ms {
                    engine.observe(&event, from_ms, false);
                    continue;
                }
                while clock + TICK_MS <= at {
                    clock += TICK_MS;
                    note(engine.tick(clock), &mut findings);
                }
                clock = clock.max(at);
                note(engine.observe(&event, clock, true), &mut findings);
            }
            if done {
                break;
            }
        }
        while clock + TICK_MS <= to_ms {
            clock += TICK_MS;
            note(engine.tick(clock), &mut findings);
        }
    }
    findings.sort_by(|a, b| (a.at_ms, &a.rule, &a.group).cmp(&(b.at_ms, &b.rule, &b.group)));
    Ok(findings)
}

/// The findings as a table.
pub fn render(findings: &[Finding]) -> String {
    let mut out = format!(
        "{:<24}  {:<10}  {:<24}  {:<24}  {:<9}  {}\n",
        "AT", "TENANT", "RULE", "GROUP", "EVENT", "VALUE"
    );
    for f in findings {
        let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(f.at_ms as i64)
            .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        let event = match f.notification {
            Notification::Firing => "firing",
            Notification::Repeat => "repeat",
            Notification::Resolved => "resolved",
        };
        let value = f.value.map_or("-".to_string(), |v| v.to_string());
        out.push_str(&format!(
            "{at:<24}  {:<10}  {:<24}  {:<24}  {event:<9}  {value}\n",
            f.tenant, f.rule, f.group
        ));
    }
    out
}
