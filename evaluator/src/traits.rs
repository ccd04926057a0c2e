//! The profiles a Source's rules read — each user's latest `identify` traits, each account's
//! latest `group` traits, each user's latest account — as a bounded cache of what ClickHouse
//! stores (`user_traits`, `account_traits`, `account_members`).
//!
//! The engine learns profiles from the events it counts, as Segment merges them (per trait,
//! latest wins). Memory is bounded: each of the three caches holds at most `capacity`
//! entries (`--trait-cache-capacity`) and evicts the least recently used. **On a miss** — a
//! profile evicted, or not seen since the last rebuild — [`Traits::load_missing`] reads it
//! from ClickHouse before the events that need it are counted (one query per table for a
//! whole batch), and remembers an absent profile as empty, so a user without traits costs
//! one lookup, not one per event. The profiles a batch needs are marked used before the
//! missing ones are loaded, so loading never evicts them while the batch still needs them,
//! as long as one batch needs fewer than `capacity` of each kind (keep the capacity above
//! `--batch-rows`); past that, an evicted profile counts as unknown until it is loaded again.
//! Stored profiles hold the identify/group calls of every Source of the tenant, so a loaded
//! profile can know traits sent to another Source, which the engine alone would not have
//! learned.

use lru::LruCache;
use model::event::{Event, EventKind, JsonObject};
use model::rule::EventContext;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;

/// Entries per cache (users, accounts, memberships) when no capacity is configured: at a
/// few hundred bytes per typical profile, some tens of MB per Source.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Ids per lookup query, in bytes, to stay well under ClickHouse's 256 KiB query size limit.
const QUERY_ID_BYTES: usize = 64 * 1024;

pub struct Traits {
    users: LruCache<String, JsonObject>,
    accounts: LruCache<String, JsonObject>,
    /// A user's latest account (from `group` calls); `None`: known to have joined none.
    membership: LruCache<String, Option<String>>,
}

impl Default for Traits {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl std::fmt::Debug for Traits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traits")
            .field("users", &self.users.len())
            .field("accounts", &self.accounts.len())
            .field("membership", &self.membership.len())
            .finish()
    }
}

/// What a batch needs that the cache lacks.
#[derive(Debug, Default, PartialEq)]
pub struct Missing {
    pub users: Vec<String>,
    pub memberships: Vec<String>,
    pub accounts: Vec<String>,
}

impl Missing {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.memberships.is_empty() && self.accounts.is_empty()
    }
}

impl Traits {
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            users: LruCache::new(capacity),
            accounts: LruCache::new(capacity),
            membership: LruCache::new(capacity),
        }
    }

    /// Entries held: (users, accounts, memberships).
    pub fn len(&self) -> (usize, usize, usize) {
        (self.users.len(), self.accounts.len(), self.membership.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0, 0)
    }

    pub fn learn(&mut self, event: &Event) {
        match (event.kind, event.user_key(), event.group_id.as_deref()) {
            (EventKind::Identify, Some(user), _) => merge(&mut self.users, user, &event.traits),
            (EventKind::Group, user, Some(account)) => {
                merge(&mut self.accounts, account, &event.traits);
                if let Some(user) = user {
                    self.membership
                        .put(user.to_string(), Some(account.to_string()));
                }
            }
            _ => {}
        }
    }

    /// What a rule sees of `event`: its account (own groupId, else its user's latest
    /// account) and the latest traits of both.
    pub fn context<'a>(&'a self, event: &'a Event) -> EventContext<'a> {
        let account = event.group_id.as_deref().or_else(|| {
            let user = event.user_key()?;
            self.membership.peek(user)?.as_deref()
        });
        let known = |traits: &'a JsonObject| (!traits.is_empty()).then_some(traits);
        EventContext {
            event,
            account_id: account,
            user_traits: event
                .user_key()
                .and_then(|u| self.users.peek(u))
                .and_then(known),
            account_traits: account.and_then(|a| self.accounts.peek(a)).and_then(known),
        }
    }

    /// The profiles `events` refer to that the cache lacks; those it holds are marked used.
    /// Accounts reached only through a membership not yet cached are found once that
    /// membership is loaded.
    pub fn missing<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) -> Missing {
        let mut users = HashSet::new();
        let mut accounts = HashSet::new();
        let mut missing = Missing::default();
        for event in events {
            if let Some(user) = event.user_key()
                && users.insert(user)
            {
                if !self.users.promote(user) {
                    missing.users.push(user.to_string());
                }
                match self.membership.get(user) {
                    None => missing.memberships.push(user.into()),
                    Some(Some(account)) => {
                        let account = account.clone();
                        if accounts.insert(account.clone()) && !self.accounts.promote(&account) {
                            missing.accounts.push(account);
                        }
                    }
                    Some(None) => {}
                }
            }
            if let Some(account) = event.group_id.as_deref()
                && accounts.insert(account.to_string())
                && !self.accounts.promote(account)
            {
                missing.accounts.push(account.to_string());
            }
        }
        missing
    }

    /// Loads what [`missing`](Self::missing) reports from ClickHouse; ids without a stored
    /// profile are remembered as empty. On an error nothing is remembered as absent, so the
    /// next batch asks again.
    pub async fn load_missing<'a>(
        &mut self,
        client: &clickhouse::Client,
        tenant: &str,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> anyhow::Result<()> {
        let missing = self.missing(events);
        if missing.is_empty() {
            return Ok(());
        }
        let members = load_members(client, tenant, &missing.memberships).await?;
        let mut accounts: HashSet<String> = missing.accounts.into_iter().collect();
        for (_, account) in &members {
            if !self.accounts.promote(account.as_str()) {
                accounts.insert(account.clone());
            }
        }
        let accounts: Vec<String> = accounts.into_iter().collect();
        let user_traits = load_traits(client, "user_traits", "user_id", tenant, &missing.users);
        let account_traits = load_traits(client, "account_traits", "group_id", tenant, &accounts);
        let (user_traits, account_traits) = tokio::try_join!(user_traits, account_traits)?;
        fill(&mut self.users, missing.users, user_traits);
        fill(&mut self.accounts, accounts, account_traits);
        let mut joined: HashMap<String, String> = members.into_iter().collect();
        for user in missing.memberships {
            let account = joined.remove(&user);
            self.membership.put(user, account);
        }
        metrics::counter!("evaluator_trait_cache_loads_total").increment(1);
        Ok(())
    }
}

/// Merges traits into a cached profile, per trait (latest wins), as Segment profiles merge.
fn merge(cache: &mut LruCache<String, JsonObject>, id: &str, traits: &JsonObject) {
    let update = traits.iter().map(|(k, v)| (k.clone(), v.clone()));
    match cache.get_mut(id) {
        Some(profile) => profile.extend(update),
        None => {
            cache.put(id.to_string(), update.collect());
        }
    }
}

/// Caches loaded profiles, and an empty one for each id without a stored profile.
fn fill(
    cache: &mut LruCache<String, JsonObject>,
    ids: Vec<String>,
    mut loaded: HashMap<String, JsonObject>,
) {
    for id in ids {
        let profile = loaded.remove(&id).unwrap_or_default();
        cache.put(id, profile);
    }
}

/// Splits ids into groups whose text fits one query.
fn chunks(ids: &[String]) -> Vec<&[String]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, id) in ids.iter().enumerate() {
        if bytes + id.len() + 8 > QUERY_ID_BYTES && i > start {
            chunks.push(&ids[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += id.len() + 8;
    }
    if start < ids.len() {
        chunks.push(&ids[start..]);
    }
    chunks
}

#[derive(clickhouse::Row, Deserialize)]
struct TraitRow {
    id: String,
    key: String,
    value: String,
}

/// The latest value of every trait of these ids (`user_traits` or `account_traits`).
async fn load_traits(
    client: &clickhouse::Client,
    table: &str,
    id_column: &str,
    tenant: &str,
    ids: &[String],
) -> anyhow::Result<HashMap<String, JsonObject>> {
    let mut profiles = HashMap::<String, JsonObject>::new();
    for chunk in chunks(ids) {
        let rows = client
            .query(&format!(
                "SELECT {id_column} AS id, key, argMax(value, updated_ms) AS value FROM {table}
                 WHERE tenant = ? AND has(?, {id_column}) GROUP BY {id_column}, key"
            ))
            .bind(tenant)
            .bind(chunk)
            .fetch_all::<TraitRow>()
            .await?;
        for row in rows {
            let value = serde_json::from_str(&row.value).unwrap_or(serde_json::Value::Null);
            profiles.entry(row.id).or_default().insert(row.key, value);
        }
    }
    Ok(profiles)
}

#[derive(clickhouse::Row, Deserialize)]
struct MemberRow {
    user_id: String,
    group_id: String,
}

/// Each user's latest account.
async fn load_members(
    client: &clickhouse::Client,
    tenant: &str,
    users: &[String],
) -> anyhow::Result<Vec<(String, String)>> {
    let mut members = Vec::new();
    for chunk in chunks(users) {
        let rows = client
            .query(
                "SELECT user_id, argMax(group_id, updated_ms) AS group_id FROM account_members
                 WHERE tenant = ? AND has(?, user_id) GROUP BY user_id",
            )
            .bind(tenant)
            .bind(chunk)
            .fetch_all::<MemberRow>()
            .await?;
        members.extend(rows.into_iter().map(|r| (r.user_id, r.group_id)));
    }
    Ok(members)
}

#[cfg(test)]
#[path = "traits_tests.rs"]
mod tests;
