//! `pwctl consumers …` and `pwctl drain`: the group's consumers (one per executor process), pruning those
//! that are gone, and asking one to drain.

use serde_json::json;

use super::output::{human_ms, table};
use super::status::consumer_rows;
use super::{AdminError, ConsumersCommand, Ctx, Out};
use crate::control::now_ms;

pub(super) async fn run(ctx: &Ctx, command: ConsumersCommand) -> Result<Out, AdminError> {
    match command {
        ConsumersCommand::Ls => ls(ctx).await,
        ConsumersCommand::Prune { idle_secs, dry_run } => prune(ctx, idle_secs, dry_run).await,
    }
}

async fn ls(ctx: &Ctx) -> Result<Out, AdminError> {
    let consumers = consumer_rows(ctx).await?;
    let drains = ctx.control.drains().await?;
    let rows: Vec<Vec<String>> = consumers.iter().map(|c| c.table_row(&drains)).collect();
    let json = json!({ "consumers": consumers.iter().map(|c| json!({
        "name": c.name, "pending": c.pending, "idle_ms": c.idle_ms,
        "drain_requested_at_ms": drains.get(&c.name),
    })).collect::<Vec<_>>() });
    let text = format!(
        "{} consumer(s)\n{}",
        consumers.len(),
        table(&["name", "main", "sub", "idle", ""], &rows)
    );
    Ok(Out::new(json, text))
}

async fn prune(ctx: &Ctx, idle_secs: u64, dry_run: bool) -> Result<Out, AdminError> {
    let min_idle_ms = idle_secs.saturating_mul(1000);
    let consumers = consumer_rows(ctx).await?;
    let candidates: Vec<_> = consumers
        .iter()
        .filter(|c| c.total_pending() == 0 && c.idle_ms >= min_idle_ms)
        .collect();
    let mut pruned = Vec::new();
    let mut busy = Vec::new();
    for c in &candidates {
        if dry_run {
            pruned.push(c.name.clone());
            continue;
        }
        // Checked again inside the script: an entry delivered meanwhile must not lose its pending record.
        let gone = crate::streams::consumer::retire(
            &mut ctx.conn(),
            &ctx.keys,
            &c.name,
            std::time::Duration::from_millis(min_idle_ms),
        )
        .await?;
        if gone {
            pruned.push(c.name.clone());
        } else {
            busy.push(c.name.clone());
        }
    }
    let kept = consumers.len() - pruned.len();
    let verb = if dry_run { "would prune" } else { "pruned" };
    let mut text = format!(
        "{verb} {} consumer(s) with nothing pending and idle over {}; {kept} kept\n",
        pruned.len(),
        human_ms(min_idle_ms)
    );
    for name in &pruned {
        text.push_str(&format!("  {name}\n"));
    }
    if !busy.is_empty() {
        text.push_str(&format!(
            "became busy meanwhile, kept: {}\n",
            busy.join(", ")
        ));
    }
    Ok(Out::new(
        json!({ "dry_run": dry_run, "pruned": pruned, "busy": busy, "kept": kept }),
        text,
    ))
}

/// `pwctl drain CONSUMER [--cancel] [--force]`.
pub(super) async fn drain(
    ctx: &Ctx,
    consumer: &str,
    cancel: bool,
    force: bool,
) -> Result<Out, AdminError> {
    if consumer.is_empty()
        || consumer
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(AdminError::Usage(format!(
            "{consumer:?} is not a consumer name"
        )));
    }
    if cancel {
        let had = ctx.control.clear_drain(consumer).await?;
        let text = if had {
            format!("{consumer}: drain request withdrawn")
        } else {
            format!("{consumer}: no drain request")
        };
        return Ok(Out::new(
            json!({ "consumer": consumer, "withdrawn": had }),
            text,
        ));
    }
    let known = consumer_rows(ctx).await?.iter().any(|c| c.name == consumer);
    if !known && !force {
        return Err(AdminError::Failed(format!(
            "{consumer} is not a consumer of the group (see `pwctl consumers ls`); --force asks anyway"
        )));
    }
    ctx.control.request_drain(consumer, now_ms()).await?;
    Ok(Out::new(
        json!({ "consumer": consumer, "drain_requested": true, "known": known }),
        format!(
            "{consumer}: drain requested; within PW_CONTROL_POLL_MS it stops claiming, finishes what runs and exits 0"
        ),
    ))
}
