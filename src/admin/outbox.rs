//! `pwctl outbox …`: results waiting for the manager to accept their report. `show` decrypts with
//! `PW_OUTBOX_KEY` and masks secrets unless `--reveal`; `export` writes the records (credentials included)
//! to a new 0600 file and marks each one exported; `drop` deletes only records exported unchanged, so an
//! account is never lost; `retry` frees report locks left by consumers that are gone, so the outbox loop
//! reports the record at its next pass.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use redis::Script;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::output::{human_ms, mask, table};
use super::status::{consumer_rows, outbox_ids};
use super::{AdminError, Ctx, Out, OutboxCommand};
use crate::control::{EXPORT_MARK_TTL_SECS, now_ms};
use crate::outbox::{Outbox, OutboxRecord, Report};
use crate::streams::StreamError;
use crate::task::TaskId;

/// One waiting record: its stored value and, with the key, its contents.
struct Waiting {
    id: TaskId,
    sealed: Vec<u8>,
    record: Option<Result<OutboxRecord, String>>,
    lock: Option<String>,
    exported: bool,
}

fn lock_key(ctx: &Ctx, id: &TaskId) -> String {
    ctx.keys.outbox_lock(id)
}

fn outbox(ctx: &Ctx) -> Option<Outbox> {
    ctx.config
        .outbox_key
        .as_ref()
        .map(|k| Outbox::new(ctx.conn(), ctx.keys.clone(), k))
}

fn parse_id(raw: &str) -> Result<TaskId, AdminError> {
    TaskId::parse(raw).map_err(|e| AdminError::Usage(format!("{raw:?}: {e}")))
}

async fn load(ctx: &Ctx, id: TaskId) -> Result<Option<Waiting>, AdminError> {
    let mark_key = ctx.control.keys().exported(id.as_str());
    let check = Script::new(include_str!("lua/is_exported.lua"));
    let mut pipe = redis::pipe();
    pipe.get(ctx.keys.outbox(&id)).get(lock_key(ctx, &id));
    // Loaded first: EVALSHA inside a pipeline is not retried when the script cache is empty.
    pipe.load_script(&check).ignore();
    pipe.invoke_script(check.key(ctx.keys.outbox(&id)).key(&mark_key));
    let (sealed, lock, exported): (Option<Vec<u8>>, Option<String>, u64) = pipe
        .query_async(&mut ctx.conn())
        .await
        .map_err(StreamError::redis("GET outbox"))?;
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    let record = outbox(ctx).map(|o| o.open(&id, &sealed).map_err(|e| e.to_string()));
    let exported = exported > 0;
    Ok(Some(Waiting {
        id,
        sealed,
        record,
        lock,
        exported,
    }))
}

/// The records named by `ids`, or every waiting one.
async fn selected(ctx: &Ctx, ids: &[String], all: bool) -> Result<Vec<Waiting>, AdminError> {
    let ids: Vec<String> = if all {
        outbox_ids(ctx).await?
    } else if ids.is_empty() {
        return Err(AdminError::Usage("name task ids, or --all".into()));
    } else {
        ids.to_vec()
    };
    let mut out = Vec::new();
    for raw in ids {
        let id = parse_id(&raw)?;
        match load(ctx, id).await? {
            Some(w) => out.push(w),
            None if all => {}
            None => {
                return Err(AdminError::Failed(format!(
                    "no outbox record for task {raw}"
                )));
            }
        }
    }
    Ok(out)
}

fn kind(r: &OutboxRecord) -> &'static str {
    match r.report {
        Report::Complete(_) => "complete",
        Report::Fail { .. } => "fail",
    }
}

/// The record as JSON; secrets masked unless `reveal`.
fn record_json(r: &OutboxRecord, reveal: bool) -> Value {
    let secret = |s: &Option<secrecy::SecretString>| {
        s.as_ref().map(|v| {
            if reveal {
                v.expose_secret().to_owned()
            } else {
                mask(v.expose_secret())
            }
        })
    };
    let mut j = json!({
        "task_id": r.task_id.to_string(),
        "site": r.site.as_str(),
        "domain": r.domain,
        "entry_id": r.entry_id,
        "attempts": r.attempts,
        "finished_at_ms": r.finished_at_ms,
        "kind": kind(r),
    });
    match &r.report {
        Report::Complete(reg) => {
            j["email"] = json!(reg.email);
            j["username"] = json!(reg.username);
            j["password"] = json!(secret(&reg.password));
            j["cookie"] = json!(secret(&reg.cookie));
            j["link_rss"] = json!(reg.link_rss);
            j["note"] = json!(reg.note);
        }
        Report::Fail {
            error_message,
            note,
        } => {
            j["error_message"] = json!(error_message);
            j["note"] = json!(note);
        }
    }
    j
}

pub(super) async fn run(ctx: &Ctx, command: OutboxCommand) -> Result<Out, AdminError> {
    match command {
        OutboxCommand::Ls => ls(ctx).await,
        OutboxCommand::Show { id, reveal } => {
            if ctx.config.outbox_key.is_none() {
                return Err(AdminError::Usage(
                    "outbox show decrypts: set PW_OUTBOX_KEY or PW_OUTBOX_KEY_FILE".into(),
                ));
            }
            let id = parse_id(&id)?;
            let w = load(ctx, id.clone())
                .await?
                .ok_or_else(|| AdminError::Failed(format!("no outbox record for task {id}")))?;
            match w.record {
                Some(Ok(r)) => {
                    let mut j = record_json(&r, reveal);
                    j["report_lock"] = json!(w.lock);
                    let mut text = String::new();
                    if let Value::Object(m) = &j {
                        for (k, v) in m {
                            if !v.is_null() {
                                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                                text.push_str(&format!("{k}: {v}\n"));
                            }
                        }
                    }
                    Ok(Out::new(j, text))
                }
                Some(Err(e)) => Err(AdminError::Failed(e)),
                None => Err(AdminError::Usage("PW_OUTBOX_KEY is not set".into())),
            }
        }
        OutboxCommand::Retry { ids, all, force } => retry(ctx, &ids, all, force).await,
        OutboxCommand::Export { file, ids, all } => export(ctx, &file, &ids, all).await,
        OutboxCommand::Drop { ids, all } => drop_exported(ctx, &ids, all).await,
    }
}

async fn ls(ctx: &Ctx) -> Result<Out, AdminError> {
    let records = selected(ctx, &[], true).await?;
    let now = now_ms();
    let mut rows = Vec::new();
    let mut list = Vec::new();
    for w in &records {
        let (site, domain, kind, age, attempts) = match &w.record {
            Some(Ok(r)) => (
                r.site.as_str().to_owned(),
                r.domain.clone(),
                kind(r).to_owned(),
                human_ms(now.saturating_sub(r.finished_at_ms)),
                r.attempts.to_string(),
            ),
            Some(Err(_)) => (
                "?".into(),
                "?".into(),
                "does not authenticate".into(),
                "?".into(),
                "?".into(),
            ),
            None => (
                "?".into(),
                "?".into(),
                "(no PW_OUTBOX_KEY)".into(),
                "?".into(),
                "?".into(),
            ),
        };
        rows.push(vec![
            w.id.to_string(),
            site.clone(),
            domain.clone(),
            kind.clone(),
            age,
            attempts,
            w.lock.clone().unwrap_or_default(),
            if w.exported {
                "yes".into()
            } else {
                String::new()
            },
        ]);
        let mut j = match &w.record {
            Some(Ok(r)) => record_json(r, false),
            _ => json!({ "task_id": w.id.to_string(), "kind": kind }),
        };
        j["report_lock"] = json!(w.lock);
        j["sealed_bytes"] = json!(w.sealed.len());
        j["exported"] = json!(w.exported);
        list.push(j);
    }
    let text = format!(
        "{} outbox record(s)\n{}",
        records.len(),
        table(
            &[
                "task",
                "site",
                "domain",
                "report",
                "age",
                "attempts",
                "locked by",
                "exported"
            ],
            &rows
        )
    );
    Ok(Out::new(json!({ "records": list }), text))
}

async fn retry(ctx: &Ctx, ids: &[String], all: bool, force: bool) -> Result<Out, AdminError> {
    let records = selected(ctx, ids, all).await?;
    let live: Vec<String> = consumer_rows(ctx)
        .await?
        .into_iter()
        .map(|c| c.name)
        .collect();
    let mut results = Vec::new();
    let mut text = String::new();
    let mut refused = 0;
    for w in &records {
        let (outcome, detail) = match &w.lock {
            None => (
                "queued",
                "not locked: the outbox loop reports it at its next pass".to_owned(),
            ),
            Some(holder) if live.contains(holder) && !force => {
                refused += 1;
                (
                    "locked",
                    format!(
                        "locked by {holder}, a consumer of the group (reporting it now?); --force frees it"
                    ),
                )
            }
            Some(holder) => {
                let freed =
                    crate::streams::unlock(&mut ctx.conn(), &lock_key(ctx, &w.id), holder).await?;
                if freed {
                    (
                        "queued",
                        format!("lock of {holder} freed: reported at the next outbox pass"),
                    )
                } else {
                    (
                        "queued",
                        "the lock changed meanwhile; the loop has it".to_owned(),
                    )
                }
            }
        };
        text.push_str(&format!("{}: {detail}\n", w.id));
        results.push(json!({ "task_id": w.id.to_string(), "outcome": outcome, "detail": detail }));
    }
    let out = Out::new(json!({ "results": results }), text);
    Ok(if refused > 0 {
        out.failed(format!("{refused} record(s) left locked"))
    } else {
        out
    })
}

/// Creates `path` (never overwriting), mode 0600, and writes `lines` to it, synced to disk.
fn write_private(path: &Path, lines: &[String]) -> Result<(), AdminError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts
        .open(path)
        .map_err(|e| AdminError::Failed(format!("cannot create {}: {e}", path.display())))?;
    for line in lines {
        writeln!(file, "{line}")
            .map_err(|e| AdminError::Failed(format!("cannot write {}: {e}", path.display())))?;
    }
    file.sync_all()
        .map_err(|e| AdminError::Failed(format!("cannot sync {}: {e}", path.display())))
}

async fn export(ctx: &Ctx, file: &Path, ids: &[String], all: bool) -> Result<Out, AdminError> {
    if ctx.config.outbox_key.is_none() {
        return Err(AdminError::Usage(
            "outbox export writes the credentials: set PW_OUTBOX_KEY or PW_OUTBOX_KEY_FILE".into(),
        ));
    }
    let records = selected(ctx, ids, all).await?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let lines: Vec<String> = records
        .iter()
        .map(|w| {
            let mut j = match &w.record {
                Some(Ok(r)) => record_json(r, true),
                Some(Err(e)) => json!({ "task_id": w.id.to_string(), "error": e }),
                None => json!({ "task_id": w.id.to_string() }),
            };
            // The stored value too, so even a record that does not decrypt here is not lost.
            j["sealed_base64"] = json!(b64.encode(&w.sealed));
            j["exported_at_ms"] = json!(now_ms());
            j.to_string()
        })
        .collect();
    write_private(file, &lines)?;
    let mark = Script::new(include_str!("lua/export_mark.lua"));
    let mut marked = Vec::new();
    let mut changed = Vec::new();
    for w in &records {
        let ok: u64 = mark
            .key(ctx.keys.outbox(&w.id))
            .key(ctx.control.keys().exported(w.id.as_str()))
            .arg(&w.sealed)
            .arg(EXPORT_MARK_TTL_SECS)
            .invoke_async(&mut ctx.conn())
            .await
            .map_err(StreamError::redis("mark exported"))?;
        if ok > 0 {
            marked.push(w.id.to_string());
        } else {
            changed.push(w.id.to_string());
        }
    }
    let mut text = format!(
        "wrote {} record(s) to {} (mode 0600; it holds credentials)\n",
        records.len(),
        file.display()
    );
    if !changed.is_empty() {
        text.push_str(&format!(
            "changed or reported while exporting, not marked: {}\n",
            changed.join(", ")
        ));
    }
    Ok(Out::new(
        json!({ "file": file.display().to_string(), "exported": marked, "changed": changed }),
        text,
    ))
}

async fn drop_exported(ctx: &Ctx, ids: &[String], all: bool) -> Result<Out, AdminError> {
    let records = selected(ctx, ids, all).await?;
    let script = Script::new(include_str!("lua/drop_exported.lua"));
    let mut results = Vec::new();
    let mut text = String::new();
    let mut refused = 0;
    for w in &records {
        let answer: String = script
            .key(ctx.keys.outbox(&w.id))
            .key(ctx.control.keys().exported(w.id.as_str()))
            .key(lock_key(ctx, &w.id))
            .invoke_async(&mut ctx.conn())
            .await
            .map_err(StreamError::redis("drop outbox"))?;
        let detail = match answer.as_str() {
            "dropped" => {
                // The record is gone; let go of the task's id and its stream entry as a settled report would.
                if let Some(o) = outbox(ctx) {
                    // The lock was checked free by the drop script; settling as its "owner" frees none.
                    let done = match &w.record {
                        Some(Ok(r)) => o.finish(r, "pwctl").await,
                        _ => o.remove(&w.id, "pwctl").await,
                    };
                    if let Err(e) = done {
                        tracing::warn!(task_id = %w.id, error = %e, "record dropped; releasing its id failed");
                    }
                } else {
                    release_without_key(ctx, &w.id).await?;
                }
                "dropped (it was exported unchanged)".to_owned()
            }
            "gone" => "already gone (reported meanwhile)".to_owned(),
            "locked" => {
                refused += 1;
                "kept: a report of it is under way (see `pwctl outbox ls`)".to_owned()
            }
            _ => {
                refused += 1;
                "kept: not exported, or changed since its export; run `pwctl outbox export` first"
                    .to_owned()
            }
        };
        text.push_str(&format!("{}: {detail}\n", w.id));
        results.push(json!({ "task_id": w.id.to_string(), "outcome": answer, "detail": detail }));
    }
    let out = Out::new(json!({ "results": results }), text);
    Ok(if refused > 0 {
        out.failed(format!("{refused} record(s) kept"))
    } else {
        out
    })
}

/// Lets go of a task's id without the outbox key (the record is already deleted).
async fn release_without_key(ctx: &Ctx, id: &TaskId) -> Result<(), AdminError> {
    crate::streams::settle::Settle::task(id, "pwctl")
        .run(&mut ctx.conn(), &ctx.keys)
        .await?;
    Ok(())
}
