//! `pwctl`, the operator's command: looks at and steers a running fleet through its Redis (any machine that
//! reaches it will do). Reads `PW_REDIS_URL`, `PW_KEY_PREFIX`, `PW_INFLIGHT_TTL_SECS` and, to decrypt
//! outbox records, `PW_OUTBOX_KEY` (or `_FILE`). Every subcommand prints text, or one JSON document with
//! `--json`. Exit codes: 0 done, 1 runtime failure (Redis unreachable, a record that cannot be acted on),
//! 2 usage or configuration error. Documented in `docs/operations.md` ("pwctl").

mod consumers;
mod dead;
mod outbox;
mod output;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{AdminConfig, ConfigError, Source};
use crate::control::Control;
use crate::streams::{RedisConn, StreamError, StreamKeys};

pub use output::Out;

/// The admin command's arguments.
#[derive(Debug, Parser)]
#[command(
    name = "pwctl",
    version,
    about = "Look at and steer a podcast-worker fleet through its Redis",
    after_help = "Configuration comes from the environment (or PW_CONFIG_FILE): PW_REDIS_URL, PW_KEY_PREFIX, \
                  PW_INFLIGHT_TTL_SECS, and PW_OUTBOX_KEY / PW_OUTBOX_KEY_FILE for outbox show and export.\n\
                  Exit codes: 0 done, 1 runtime failure, 2 usage or configuration error."
)]
pub struct Cli {
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `pwctl` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Streams (length, lag, pending, oldest pending), consumers, dead letters, outbox, pauses, breakers,
    /// drains and the fetcher leader.
    Status,
    /// Dead letters: list, show, replay through the fetcher's de-duplicating enqueue, purge.
    #[command(subcommand)]
    Dead(DeadCommand),
    /// Results waiting in the outbox: list, show (decrypted, secrets masked), retry, export, drop.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Consumers of the group: list, prune idle ones with nothing pending.
    #[command(subcommand)]
    Consumers(ConsumersCommand),
    /// Pause a domain fleet-wide: its tasks are not started; they wait up to PW_PAUSE_HOLD_SECS, then fail.
    Pause {
        /// The domain, e.g. podbean.com.
        domain: String,
        /// Why (shown in status and in the fail message of tasks held too long).
        #[arg(long, default_value = "no reason given")]
        reason: String,
    },
    /// Resume a paused domain (also closes its circuit breaker); held tasks start.
    Resume {
        /// The domain.
        domain: String,
    },
    /// Ask one executor to drain: stop claiming, finish what runs, exit 0.
    Drain {
        /// Its consumer name (see `pwctl consumers ls`).
        consumer: String,
        /// Withdraw a drain request instead.
        #[arg(long)]
        cancel: bool,
        /// Ask even when no such consumer is in the group (an executor about to start).
        #[arg(long)]
        force: bool,
    },
}

/// `pwctl dead …`.
#[derive(Debug, Subcommand)]
pub enum DeadCommand {
    /// List dead letters, oldest first.
    Ls {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one dead letter in full.
    Show {
        /// Its id in the dead-letter stream.
        id: String,
    },
    /// Queue dead letters again through the fetcher's de-duplicating enqueue, and remove them.
    Replay {
        /// Dead-letter ids.
        ids: Vec<String>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
    /// Delete dead letters.
    Purge {
        /// Dead-letter ids.
        ids: Vec<String>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
}

/// `pwctl outbox …`.
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List waiting results (decrypted summaries when PW_OUTBOX_KEY is set).
    Ls,
    /// Show one result, decrypted; secrets masked unless --reveal.
    Show {
        /// The task id.
        id: String,
        /// Show passwords and cookies.
        #[arg(long)]
        reveal: bool,
    },
    /// Have the outbox loop report results again now (frees a report lock held by a consumer that is gone).
    Retry {
        /// Task ids.
        ids: Vec<String>,
        /// Every waiting result.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Free the lock even when its holder is still a consumer of the group.
        #[arg(long)]
        force: bool,
    },
    /// Write results with their credentials to FILE (JSON lines, mode 0600), so they can be dropped.
    Export {
        /// A new file (never overwritten).
        file: PathBuf,
        /// Task ids.
        ids: Vec<String>,
        /// Every waiting result.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
    /// Delete results, only those exported unchanged (`outbox export`), so no account is lost.
    Drop {
        /// Task ids.
        ids: Vec<String>,
        /// Every exported result.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
}

/// `pwctl consumers …`.
#[derive(Debug, Subcommand)]
pub enum ConsumersCommand {
    /// List consumers with their pending entries and idle time.
    Ls,
    /// Delete consumers with nothing pending, idle longer than --idle-secs on both streams.
    Prune {
        /// Minimum idle time.
        #[arg(long, default_value_t = 86_400)]
        idle_secs: u64,
        /// Only say which would go.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Why a subcommand did not do its job.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    /// Bad arguments (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Bad configuration (exit 2).
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// Redis failed (exit 1).
    #[error(transparent)]
    Redis(#[from] StreamError),
    /// Something could not be done (exit 1).
    #[error("{0}")]
    Failed(String),
}

impl AdminError {
    /// The process exit code: 2 for usage and configuration, 1 otherwise.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::Config(_) => 2,
            Self::Redis(_) | Self::Failed(_) => 1,
        }
    }
}

/// What every subcommand works with.
pub(crate) struct Ctx {
    pub(crate) config: AdminConfig,
    pub(crate) conn: RedisConn,
    pub(crate) keys: StreamKeys,
    pub(crate) control: Control,
}

impl Ctx {
    async fn connect(config: AdminConfig) -> Result<Self, AdminError> {
        let conn = crate::streams::connect(&config.streams, std::time::Duration::from_secs(10))
            .await
            .map_err(|e| match e {
                StreamError::BadUrl(_) => AdminError::Usage(e.to_string()),
                other => AdminError::Redis(other),
            })?;
        let keys = StreamKeys::new(&config.streams.key_prefix);
        let control = Control::new(conn.clone(), &config.streams.key_prefix);
        Ok(Self {
            config,
            conn,
            keys,
            control,
        })
    }

    pub(crate) fn conn(&self) -> RedisConn {
        self.conn.clone()
    }
}

/// Runs one parsed command line with configuration from `src`; prints its result (or error) and returns
/// the exit code.
pub async fn run(cli: Cli, src: Result<Source, ConfigError>) -> ExitCode {
    let json = cli.json;
    let result = async {
        let config = AdminConfig::from_source(&src?)?;
        let ctx = Ctx::connect(config).await?;
        dispatch(&ctx, cli.command).await
    }
    .await;
    match result {
        Ok(out) => {
            out.print(json);
            match &out.failure {
                None => ExitCode::SUCCESS,
                Some(why) => {
                    eprintln!("pwctl: {why}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            let text = crate::cli::error_chain(&e);
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "error": text, "exit_code": e.exit_code() })
                );
            }
            eprintln!("pwctl: {text}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// `pwctl` as a whole: the command line and environment of this process.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    run(cli, Source::from_env()).await
}

async fn dispatch(ctx: &Ctx, command: Command) -> Result<Out, AdminError> {
    match command {
        Command::Status => status::status(ctx).await,
        Command::Dead(c) => dead::run(ctx, c).await,
        Command::Outbox(c) => outbox::run(ctx, c).await,
        Command::Consumers(c) => consumers::run(ctx, c).await,
        Command::Pause { domain, reason } => {
            let domain = crate::control::parse_domain(&domain).map_err(AdminError::Usage)?;
            ctx.control
                .pause(&domain, &reason, crate::control::now_ms())
                .await?;
            Ok(Out::new(
                serde_json::json!({ "domain": domain, "paused": true, "reason": reason }),
                format!(
                    "{domain}: paused (reason: {reason}); executors stop starting its tasks within PW_CONTROL_POLL_MS"
                ),
            ))
        }
        Command::Resume { domain } => {
            let domain = crate::control::parse_domain(&domain).map_err(AdminError::Usage)?;
            let r = ctx.control.resume(&domain).await?;
            let text = match (r.was_paused, r.had_breaker) {
                (false, false) => format!("{domain}: was not paused"),
                (_, true) => format!("{domain}: resumed; its circuit breaker is closed"),
                (true, false) => format!("{domain}: resumed"),
            };
            Ok(Out::new(
                serde_json::json!({ "domain": domain, "was_paused": r.was_paused, "had_breaker": r.had_breaker }),
                text,
            ))
        }
        Command::Drain {
            consumer,
            cancel,
            force,
        } => consumers::drain(ctx, &consumer, cancel, force).await,
    }
}
