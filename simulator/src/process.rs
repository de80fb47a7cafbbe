//! What the simulator binary needs around the server: its log subscriber and a shutdown token from
//! SIGINT/SIGTERM. Written here, not borrowed from the fleet crate, so the two share no code.

use std::io::IsTerminal;

use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogSettings;

/// Installs the global log subscriber on stderr: JSON lines unless `json` says otherwise (auto: human-readable
/// on a terminal). An invalid filter falls back to `info`. A second call does nothing.
pub fn init_logging(log: &LogSettings) {
    let terminal = std::io::stderr().is_terminal();
    let filter = EnvFilter::try_new(&log.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if log.json.unwrap_or(!terminal) {
        builder.json().flatten_event(true).finish().try_init()
    } else {
        builder.compact().with_ansi(terminal).finish().try_init()
    };
}

/// A token cancelled on the first SIGINT or SIGTERM.
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! { _ = tokio::signal::ctrl_c() => {}, () = term => {} }
        tracing::info!("shutdown signal received");
        trigger.cancel();
    });
    token
}
