//! The simulator binary (`docs/simulator.md`): `PW_SIM_*` → [`SimulatorOptions`]; serves until SIGINT/SIGTERM.
//! Exit codes as the fleet's binaries: 0 after a clean shutdown, 1 when it fails, 2 for a configuration error.

use std::process::ExitCode;

use pw_simulator::config::{self, SimulatorConfig, Source};
use pw_simulator::{Faults, MailOptions, ScenarioSpec, SimulatorOptions};

#[tokio::main]
async fn main() -> ExitCode {
    let loaded = config::handle_args().and_then(|()| {
        let src = Source::from_env()?;
        SimulatorConfig::from_source(&src)
    });
    let cfg = match loaded {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("simulator: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    pw_simulator::init_logging(&cfg.log);
    match pw_simulator::run(options(cfg), pw_simulator::shutdown_token()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "simulator failed");
            eprintln!("simulator: {e}");
            ExitCode::FAILURE
        }
    }
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
            main_domains: cfg.main_domains,
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
