//! The simulator binary (`docs/simulator.md`): `PW_SIM_*` → the simulator's options; serves until SIGTERM.

use anyhow::Context;
use podcast_worker::config::{self, Role, SimulatorConfig, Source};
use podcast_worker::simulator::{self, Faults, MailOptions, ScenarioSpec, SimulatorOptions};
use podcast_worker::{cli, shutdown};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    config::handle_args(
        "simulator",
        Role::Simulator,
        "stand-in manager API and demo podcast platforms",
    )?;
    let cfg = SimulatorConfig::from_source(&Source::from_env()?)
        .context("while reading the configuration")?;
    cli::init_logging(&cfg.log);
    let cancel = shutdown::shutdown_token();
    let result = simulator::run(options(cfg), cancel).await;
    result.context("while running the simulator")
}

fn options(cfg: SimulatorConfig) -> SimulatorOptions {
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
            error_5xx: cfg.faults.error_5xx,
            too_many_requests: cfg.faults.too_many_requests,
            retry_after_secs: cfg.faults.retry_after_secs,
            slow: cfg.faults.slow,
            slow_ms: cfg.faults.slow_delay.as_millis() as u64,
            drop_connection: cfg.faults.drop_connection,
            drop_after_apply: cfg.faults.drop_after_apply,
            garbage: cfg.faults.garbage,
            duplicate: cfg.faults.duplicate,
            delete: cfg.faults.delete,
        },
        mail: MailOptions {
            maildir_root: cfg.maildir_root,
            users_file: cfg.mail_users_file,
            spam: cfg.mail_spam,
        },
    }
}
