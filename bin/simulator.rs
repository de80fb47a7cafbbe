//! The simulator binary: a stand-in manager API (see `docs/simulator.md`). Reads `PW_SIM_*`, starts logging,
//! maps the configuration onto the simulator's own options and serves until SIGINT/SIGTERM.

use anyhow::Context;
use podcast_worker::config::{self, LogFormat, Role, SimulatorConfig, Source};
use podcast_worker::simulator::{self, Faults, ScenarioSpec, SimulatorOptions};
use podcast_worker::{shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    config::handle_args(
        "simulator",
        Role::Simulator,
        "stand-in manager API with faults and an audit",
    )?;
    let cfg = SimulatorConfig::from_source(&Source::from_env()?)
        .context("while reading the configuration")?;
    let format = match cfg.log.format {
        LogFormat::Auto => telemetry::Format::Auto,
        LogFormat::Json => telemetry::Format::Json,
        LogFormat::Pretty => telemetry::Format::Pretty,
    };
    telemetry::init(&cfg.log.filter, format);
    let cancel = shutdown::shutdown_token();
    simulator::run(options(cfg), cancel)
        .await
        .context("while running the simulator")
}

fn options(cfg: SimulatorConfig) -> SimulatorOptions {
    let f = cfg.faults;
    SimulatorOptions {
        listen: cfg.listen,
        api_key: cfg.api_key,
        public_url: cfg.public_url,
        scenario: ScenarioSpec {
            requests: cfg.requests,
            subs_per_request: cfg.subs_per_request,
            seed: cfg.seed,
            main_domain: cfg.main_domain,
            sub_domains: cfg.sub_domains,
        },
        max_retries: cfg.max_retries,
        retry_delay: cfg.retry_delay,
        faults: Faults {
            error_5xx: f.error_5xx,
            too_many_requests: f.too_many_requests,
            retry_after_secs: f.retry_after_secs,
            slow: f.slow,
            slow_ms: f.slow_delay.as_millis() as u64,
            drop_connection: f.drop_connection,
            drop_after_apply: f.drop_after_apply,
            garbage: f.garbage,
            duplicate: f.duplicate,
            delete: f.delete,
        },
    }
}
