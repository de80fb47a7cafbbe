//! `pwctl dead …`: the dead-letter stream. A replay queues the entry again through the fetcher's own
//! de-duplicating enqueue (`SET inflight NX` + `XADD` in one script), so a task already in our hands is
//! never queued twice; only a dead letter that was queued again is removed.

use std::collections::BTreeMap;

use redis::AsyncCommands;
use redis::streams::{StreamId, StreamRangeReply};
use serde_json::{Value, json};

use super::output::{human_ms, stream_id_ms, table};
use super::{AdminError, Ctx, DeadCommand, Out};
use crate::control::now_ms;
use crate::streams::StreamError;
use crate::streams::producer::{Enqueued, Producer};
use crate::task::QueueEntry;

/// One dead letter, its fields as text (the payload holds no credentials).
#[derive(Debug, Clone)]
struct Dead {
    id: String,
    fields: BTreeMap<String, String>,
}

impl Dead {
    fn from_stream_id(s: StreamId) -> Self {
        let fields = s
            .map
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                    redis::Value::SimpleString(t) => t.clone(),
                    redis::Value::Int(n) => n.to_string(),
                    _ => String::new(),
                };
                (k.clone(), text)
            })
            .collect();
        Self { id: s.id, fields }
    }

    fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }

    fn entry(&self) -> Result<QueueEntry, String> {
        QueueEntry::decode(self.field("payload").as_bytes()).map_err(|e| e.to_string())
    }

    fn summary(&self) -> Value {
        let entry = self.entry().ok();
        json!({
            "id": self.id,
            "at_ms": self.field("at_ms").parse::<u64>().ok().or_else(|| stream_id_ms(&self.id)),
            "stream": self.field("stream"),
            "entry_id": self.field("entry_id"),
            "task_id": entry.as_ref().map(|e| e.id.to_string()),
            "domain": entry.as_ref().map(|e| e.domain.clone()),
            "deliveries": self.field("deliveries").parse::<u64>().ok(),
            "consumer": self.field("consumer"),
            "reason": self.field("reason"),
        })
    }
}

async fn range(
    ctx: &Ctx,
    start: &str,
    end: &str,
    count: Option<usize>,
) -> Result<Vec<Dead>, AdminError> {
    let mut conn = ctx.conn();
    let reply: StreamRangeReply = match count {
        Some(n) => conn.xrange_count(ctx.keys.dead(), start, end, n).await,
        None => conn.xrange(ctx.keys.dead(), start, end).await,
    }
    .map_err(StreamError::redis("XRANGE dead"))?;
    Ok(reply.ids.into_iter().map(Dead::from_stream_id).collect())
}

fn check_id(id: &str) -> Result<(), AdminError> {
    let ok = id.split_once('-').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
    });
    if ok {
        Ok(())
    } else {
        Err(AdminError::Usage(format!(
            "{id:?} is not a stream id (<ms>-<seq>, see `pwctl dead ls`)"
        )))
    }
}

async fn one(ctx: &Ctx, id: &str) -> Result<Dead, AdminError> {
    check_id(id)?;
    range(ctx, id, id, Some(1))
        .await?
        .pop()
        .ok_or_else(|| AdminError::Failed(format!("no dead letter {id}")))
}

/// The dead letters named by `ids`, or all of them.
async fn selected(ctx: &Ctx, ids: &[String], all: bool) -> Result<Vec<Dead>, AdminError> {
    if all {
        return range(ctx, "-", "+", None).await;
    }
    if ids.is_empty() {
        return Err(AdminError::Usage("name dead-letter ids, or --all".into()));
    }
    let mut out = Vec::new();
    for id in ids {
        out.push(one(ctx, id).await?);
    }
    Ok(out)
}

pub(super) async fn run(ctx: &Ctx, command: DeadCommand) -> Result<Out, AdminError> {
    match command {
        DeadCommand::Ls { limit } => ls(ctx, limit).await,
        DeadCommand::Show { id } => {
            let d = one(ctx, &id).await?;
            let payload: Value = serde_json::from_str(d.field("payload"))
                .unwrap_or_else(|_| json!(d.field("payload")));
            let mut json = d.summary();
            json["payload"] = payload.clone();
            let mut text = String::new();
            for (k, v) in &d.fields {
                if k != "payload" {
                    text.push_str(&format!("{k}: {v}\n"));
                }
            }
            text.push_str(&format!("payload: {payload}\n"));
            Ok(Out::new(json, format!("dead letter {}\n{text}", d.id)))
        }
        DeadCommand::Replay { ids, all } => replay(ctx, &ids, all).await,
        DeadCommand::Purge { ids, all } => {
            let dead = selected(ctx, &ids, all).await?;
            let ids: Vec<&str> = dead.iter().map(|d| d.id.as_str()).collect();
            let removed: u64 = if ids.is_empty() {
                0
            } else {
                ctx.conn()
                    .xdel(ctx.keys.dead(), &ids)
                    .await
                    .map_err(StreamError::redis("XDEL dead"))?
            };
            Ok(Out::new(
                json!({ "purged": ids, "removed": removed }),
                format!("purged {removed} dead letter(s)"),
            ))
        }
    }
}

async fn ls(ctx: &Ctx, limit: usize) -> Result<Out, AdminError> {
    let dead = range(ctx, "-", "+", Some(limit.max(1))).await?;
    let total: u64 = ctx
        .conn()
        .xlen(ctx.keys.dead())
        .await
        .map_err(StreamError::redis("XLEN dead"))?;
    let now = now_ms();
    let rows: Vec<Vec<String>> = dead
        .iter()
        .map(|d| {
            let s = d.summary();
            let age = s["at_ms"]
                .as_u64()
                .map_or("-".into(), |t| human_ms(now.saturating_sub(t)));
            vec![
                d.id.clone(),
                age,
                s["task_id"].as_str().unwrap_or("?").to_owned(),
                s["domain"].as_str().unwrap_or("?").to_owned(),
                d.field("deliveries").to_owned(),
                crate::task::truncate_chars(d.field("reason"), 80),
            ]
        })
        .collect();
    let text = format!(
        "{} of {total} dead letter(s)\n{}",
        dead.len(),
        table(
            &["id", "age", "task", "domain", "deliveries", "reason"],
            &rows
        )
    );
    Ok(Out::new(
        json!({ "total": total, "dead_letters": dead.iter().map(Dead::summary).collect::<Vec<_>>() }),
        text,
    ))
}

async fn replay(ctx: &Ctx, ids: &[String], all: bool) -> Result<Out, AdminError> {
    let dead = selected(ctx, ids, all).await?;
    let producer = Producer::connect(&ctx.config.streams, ctx.config.inflight_ttl).await?;
    let mut results = Vec::new();
    let mut text = String::new();
    let mut failed = 0;
    for d in &dead {
        let (outcome, detail) = match d.entry() {
            Err(reason) => {
                failed += 1;
                (
                    "undecodable",
                    format!("kept: the payload cannot be decoded ({reason})"),
                )
            }
            Ok(entry) => match producer.enqueue(&entry).await? {
                Enqueued::Added(new_id) => {
                    let _: u64 = ctx
                        .conn()
                        .xdel(ctx.keys.dead(), &[&d.id])
                        .await
                        .map_err(StreamError::redis("XDEL dead"))?;
                    (
                        "replayed",
                        format!("queued on {} as {new_id}; dead letter removed", entry.site),
                    )
                }
                Enqueued::Duplicate | Enqueued::Relisted => {
                    failed += 1;
                    (
                        "in_our_hands",
                        format!(
                            "kept: task {} is already in our hands (its inflight marker exists: queued, \
                             running or just completed); purge the dead letter if it is no longer needed",
                            entry.id
                        ),
                    )
                }
            },
        };
        text.push_str(&format!("{}: {detail}\n", d.id));
        results.push(json!({ "id": d.id, "outcome": outcome, "detail": detail }));
    }
    if dead.is_empty() {
        text.push_str("no dead letters\n");
    }
    let out = Out::new(json!({ "results": results }), text);
    Ok(if failed > 0 {
        out.failed(format!(
            "{failed} of {} dead letter(s) not replayed",
            dead.len()
        ))
    } else {
        out
    })
}
