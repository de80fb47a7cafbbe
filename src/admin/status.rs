//! `pwctl status`: one look at the whole fleet from Redis, including the fetcher's listings (under way and
//! the last finished), read in the JSON the fetcher stores (`src/fetcher/listing.rs`), not through its types.

use std::collections::BTreeMap;

use redis::AsyncCommands;
use redis::streams::{StreamInfoConsumersReply, StreamInfoGroupsReply, StreamPendingReply};
use serde::Deserialize;
use serde_json::{Value, json};

use super::output::{human_ms, stream_id_ms, table};
use super::{AdminError, Ctx, Out};
use crate::control::now_ms;
use crate::streams::{GROUP, StreamError};
use crate::task::Site;

/// One task stream as the group sees it.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamRow {
    pub(crate) stream: &'static str,
    pub(crate) length: u64,
    pub(crate) group: bool,
    pub(crate) lag: u64,
    pub(crate) pending: u64,
    pub(crate) oldest_pending_ms: Option<u64>,
}

/// One consumer across both streams.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConsumerRow {
    pub(crate) name: String,
    /// Pending entries by stream (`main`, `sub`).
    pub(crate) pending: BTreeMap<&'static str, u64>,
    /// Smallest idle time over the streams it is known on.
    pub(crate) idle_ms: u64,
}

impl ConsumerRow {
    pub(crate) fn total_pending(&self) -> u64 {
        self.pending.values().sum()
    }
}

/// A `GET /links` under way: one field of `StreamKeys::listing` (the fetcher's token → this JSON).
#[derive(Debug, Clone, Deserialize)]
struct UnderWay {
    started_ms: u64,
    beat_ms: u64,
    limit: u32,
}

/// The last listing a fetcher finished: `StreamKeys::last_listing`.
#[derive(Debug, Clone, Deserialize)]
struct Finished {
    holder: String,
    started_ms: u64,
    ended_ms: u64,
    limit: u32,
}

/// The listings under way (holder, record; an unreadable record as `None`) and the last finished one.
async fn listings(
    ctx: &Ctx,
) -> Result<(Vec<(String, Option<UnderWay>)>, Option<Finished>), AdminError> {
    let mut conn = ctx.conn();
    let raw: Vec<(String, String)> = conn
        .hgetall(ctx.keys.listing())
        .await
        .map_err(StreamError::redis("HGETALL listing"))?;
    let under_way = raw
        .into_iter()
        .map(|(holder, v)| (holder, serde_json::from_str(&v).ok()))
        .collect();
    let last: Option<String> = conn
        .get(ctx.keys.last_listing())
        .await
        .map_err(StreamError::redis("GET last listing"))?;
    Ok((under_way, last.and_then(|v| serde_json::from_str(&v).ok())))
}

/// The listing lines of the text output.
fn listing_text(
    under_way: &[(String, Option<UnderWay>)],
    last: Option<&Finished>,
    now: u64,
) -> String {
    let mut text = String::new();
    if under_way.is_empty() {
        text.push_str(
            "Listing under way: none
",
        );
    }
    for (holder, record) in under_way {
        text.push_str(&match record {
            Some(r) => format!(
                "Listing under way: {holder} for {} (limit {}, heartbeat {} ago)
",
                human_ms(now.saturating_sub(r.started_ms)),
                r.limit,
                human_ms(now.saturating_sub(r.beat_ms))
            ),
            None => format!(
                "Listing under way: {holder} (unreadable record)
"
            ),
        });
    }
    text.push_str(&match last {
        Some(l) => format!(
            "Last listing: {} ago by {}, took {} (limit {})\n",
            human_ms(now.saturating_sub(l.ended_ms)),
            l.holder,
            human_ms(l.ended_ms.saturating_sub(l.started_ms)),
            l.limit
        ),
        None => "Last listing: none recorded\n".into(),
    });
    text
}

/// Length, lag, pending and the oldest pending entry's age of one stream.
async fn stream_row(ctx: &Ctx, site: Site) -> Result<StreamRow, AdminError> {
    let key = ctx.keys.tasks(site);
    let mut conn = ctx.conn();
    let length: u64 = conn.xlen(&key).await.map_err(StreamError::redis("XLEN"))?;
    let mut row = StreamRow {
        stream: site.as_str(),
        length,
        ..StreamRow::default()
    };
    let groups: Result<StreamInfoGroupsReply, _> = conn.xinfo_groups(&key).await;
    let Some(g) = groups
        .ok()
        .and_then(|r| r.groups.into_iter().find(|g| g.name == GROUP))
    else {
        return Ok(row);
    };
    row.group = true;
    row.pending = g.pending as u64;
    row.lag = g
        .lag
        .map_or_else(|| length.saturating_sub(row.pending), |l| l as u64);
    if row.pending > 0 {
        let summary: StreamPendingReply = conn
            .xpending(&key, GROUP)
            .await
            .map_err(StreamError::redis("XPENDING"))?;
        if let StreamPendingReply::Data(d) = summary {
            row.oldest_pending_ms = stream_id_ms(&d.start_id).map(|t| now_ms().saturating_sub(t));
        }
    }
    Ok(row)
}

/// Every consumer of the group on both streams.
impl ConsumerRow {
    /// The row `status` and `consumers ls` print: name, pending per stream, idle, drain mark.
    pub(crate) fn table_row(&self, drains: &BTreeMap<String, u64>) -> Vec<String> {
        let pending = |site: &str| self.pending.get(site).copied().unwrap_or(0).to_string();
        let drain = if drains.contains_key(&self.name) {
            "drain requested"
        } else {
            ""
        };
        vec![
            self.name.clone(),
            pending("main"),
            pending("sub"),
            human_ms(self.idle_ms),
            drain.into(),
        ]
    }
}

pub(crate) async fn consumer_rows(ctx: &Ctx) -> Result<Vec<ConsumerRow>, AdminError> {
    let mut by_name: BTreeMap<String, ConsumerRow> = BTreeMap::new();
    for site in Site::ALL {
        let reply: Result<StreamInfoConsumersReply, redis::RedisError> = ctx
            .conn()
            .xinfo_consumers(ctx.keys.tasks(site), GROUP)
            .await;
        let consumers = match reply {
            Ok(r) => r.consumers,
            // No group, or no stream at all (nothing was ever queued under this prefix).
            Err(e) if e.code() == Some("NOGROUP") || e.to_string().contains("no such key") => {
                continue;
            }
            Err(e) => return Err(StreamError::redis("XINFO CONSUMERS")(e).into()),
        };
        for c in consumers {
            let row = by_name
                .entry(c.name.clone())
                .or_insert_with(|| ConsumerRow {
                    name: c.name.clone(),
                    idle_ms: u64::MAX,
                    ..ConsumerRow::default()
                });
            row.pending.insert(site.as_str(), c.pending as u64);
            row.idle_ms = row.idle_ms.min(c.idle as u64);
        }
    }
    Ok(by_name.into_values().collect())
}

/// Ids of every waiting outbox record.
pub(crate) async fn outbox_ids(ctx: &Ctx) -> Result<Vec<String>, AdminError> {
    let pattern = ctx.keys.outbox_pattern();
    let ids = crate::streams::keys_under(&mut ctx.conn(), &pattern).await;
    Ok(ids.map_err(StreamError::redis("SCAN outbox"))?)
}

/// `pwctl status`.
pub(super) async fn status(ctx: &Ctx) -> Result<Out, AdminError> {
    let mut streams = Vec::new();
    for site in Site::ALL {
        streams.push(stream_row(ctx, site).await?);
    }
    let consumers = consumer_rows(ctx).await?;
    let mut conn = ctx.conn();
    let dead: u64 = conn
        .xlen(ctx.keys.dead())
        .await
        .map_err(StreamError::redis("XLEN dead"))?;
    let outbox = outbox_ids(ctx).await?.len();
    let paused = ctx.control.paused().await?;
    let breakers = ctx.control.breakers().await?;
    let drains = ctx.control.drains().await?;
    let leader: Option<String> = conn
        .get(ctx.keys.leader())
        .await
        .map_err(StreamError::redis("GET leader"))?;
    let leader_ttl: i64 = conn
        .pttl(ctx.keys.leader())
        .await
        .map_err(StreamError::redis("PTTL leader"))?;
    let (under_way, last) = listings(ctx).await?;
    let now = now_ms();

    let json = json!({
        "streams": streams.iter().map(|s| json!({
            "stream": s.stream, "length": s.length, "group": s.group, "lag": s.lag,
            "pending": s.pending, "oldest_pending_age_ms": s.oldest_pending_ms,
        })).collect::<Vec<_>>(),
        "consumers": consumers.iter().map(|c| json!({
            "name": c.name, "pending": c.pending, "idle_ms": c.idle_ms,
            "drain_requested_at_ms": drains.get(&c.name),
        })).collect::<Vec<_>>(),
        "dead_letters": dead,
        "outbox_records": outbox,
        "paused": paused.iter().map(|(d, p)| json!({
            "domain": d, "by": p.by.as_str(), "reason": p.reason, "at_ms": p.at_ms,
            "probe_due_ms": p.probe_due_ms,
        })).collect::<Vec<_>>(),
        "breakers": breakers.iter().map(|(d, b)| json!({
            "domain": d, "state": b.state.as_str(), "reason": b.reason, "opened_at_ms": b.opened_at_ms,
            "probe_due_ms": b.probe_due_ms, "failures": b.failures, "probe_task": b.probe_task,
            "probe_owner": b.probe_owner,
        })).collect::<Vec<_>>(),
        "drains": drains,
        "fetcher_leader": leader.as_ref().map(|l| json!({ "holder": l, "ttl_ms": leader_ttl })),
        "listings_under_way": under_way.iter().map(|(holder, r)| match r {
            Some(r) => json!({
                "holder": holder, "started_ms": r.started_ms, "heartbeat_ms": r.beat_ms, "limit": r.limit,
            }),
            None => json!({ "holder": holder, "unreadable": true }),
        }).collect::<Vec<_>>(),
        "last_listing": last.as_ref().map_or(Value::Null, |l| json!({
            "holder": l.holder, "started_ms": l.started_ms, "ended_ms": l.ended_ms, "limit": l.limit,
        })),
    });

    let mut text = String::from("Streams\n");
    let rows: Vec<Vec<String>> = streams
        .iter()
        .map(|s| {
            vec![
                s.stream.to_owned(),
                s.length.to_string(),
                if s.group {
                    s.lag.to_string()
                } else {
                    "no group".into()
                },
                s.pending.to_string(),
                s.oldest_pending_ms.map_or("-".into(), human_ms),
            ]
        })
        .collect();
    text.push_str(&table(
        &["stream", "length", "lag", "pending", "oldest pending"],
        &rows,
    ));
    text.push_str(&format!(
        "\nDead letters: {dead}    Outbox records: {outbox}\n"
    ));
    text.push_str(&match &leader {
        Some(l) => format!(
            "Fetcher leader: {l} (lease {})\n",
            human_ms(leader_ttl.max(0) as u64)
        ),
        None => "Fetcher leader: none\n".into(),
    });
    text.push_str(&listing_text(&under_way, last.as_ref(), now));
    text.push_str(&format!("\nConsumers ({})\n", consumers.len()));
    if !consumers.is_empty() {
        let rows: Vec<Vec<String>> = consumers.iter().map(|c| c.table_row(&drains)).collect();
        text.push_str(&table(&["name", "main", "sub", "idle", ""], &rows));
    }
    text.push_str(&format!("\nPaused domains ({})\n", paused.len()));
    for (d, p) in &paused {
        text.push_str(&format!(
            "  {d}  by {}  for {}  reason: {}\n",
            p.by.as_str(),
            human_ms(now.saturating_sub(p.at_ms)),
            p.reason
        ));
    }
    text.push_str(&format!(
        "\nCircuit breakers not closed ({})\n",
        breakers.len()
    ));
    for (d, b) in &breakers {
        let probe = match (&b.probe_task, b.probe_due_ms > now) {
            (Some(t), _) => format!("probe {t} running"),
            (None, true) => format!("probe in {}", human_ms(b.probe_due_ms - now)),
            (None, false) => "probe due".into(),
        };
        text.push_str(&format!(
            "  {d}  {}  {probe}  reason: {}\n",
            b.state.as_str(),
            b.reason
        ));
    }
    Ok(Out::new(json, text))
}
