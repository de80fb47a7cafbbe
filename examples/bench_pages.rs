//! Our side of scripts/bench-pages, against the image-heavy site of `examples/bench_pages_site.py`. Not a
//! test: prints one JSON object.
//!
//! - `pss`: opens `--contexts` sessions of one browser pool (a plain Chromium with the executor's flags), one
//!   after another, each blocking `--block` and loading `a.html`; prints the summed PSS of Chromium's process
//!   tree after each, and every load time.
//! - `click`: runs `--contexts` recipe runs at once, each `goto a.html` then `--clicks` steps
//!   `click = "#next"` / `navigates = true`; prints every click step's time from the step log.
//!
//! `cargo run --example bench_pages -- click --base http://127.0.0.1:PORT --contexts 4 --clicks 10`

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use podcast_worker::browser::{BrowserPool, Resource};
use podcast_worker::config::{BrowserSettings, ImageSettings, MailSettings, Source, TotpSettings};
use podcast_worker::recipe::{RecipeDriver, RecipeEnv, parse_recipe};
use podcast_worker::task::Task;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Pss,
    Click,
}

#[derive(Parser, Debug)]
struct Args {
    mode: Mode,
    /// The site, e.g. http://127.0.0.1:8123.
    #[arg(long)]
    base: String,
    /// Contexts (sessions) at once.
    #[arg(long, default_value_t = 4)]
    contexts: usize,
    /// Click steps per run (`click` mode).
    #[arg(long, default_value_t = 10)]
    clicks: usize,
    /// Resource types to block, comma-separated (none by default).
    #[arg(long, default_value = "")]
    block: String,
    /// Chromium binary.
    #[arg(long, default_value = "/usr/lib/chromium/chromium")]
    chromium: String,
    /// An extra Chromium flag without the leading -- (repeatable), as PW_CHROMIUM_ARGS would add.
    #[arg(long = "arg")]
    args: Vec<String>,
}

fn blocked(list: &str) -> anyhow::Result<Vec<Resource>> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| Resource::parse(s).map_err(anyhow::Error::msg))
        .collect()
}

fn pool(args: &Args, dir: &std::path::Path) -> anyhow::Result<BrowserPool> {
    let mut s = BrowserSettings::from_source(&Source::default())?;
    s.chromium_path = args.chromium.clone().into();
    s.extra_args.extend(args.args.iter().cloned());
    s.profile_root = dir.join("profiles");
    s.max_tasks = 1_000_000;
    s.max_pss_bytes = u64::MAX / 2;
    Ok(BrowserPool::new(s)?)
}

async fn pss(args: &Args, pool: &BrowserPool) -> anyhow::Result<serde_json::Value> {
    let block = blocked(&args.block)?;
    let mut sessions = Vec::new();
    let (mut pss_mb, mut loads_ms) = (Vec::new(), Vec::new());
    for _ in 0..args.contexts {
        let session = pool.open_session().await?;
        session.block(&block).await?;
        let started = Instant::now();
        session.goto(&format!("{}/a.html", args.base)).await?;
        loads_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        // Let decoding and layout settle before sampling.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        pss_mb.push(pool.stats().pss_bytes as f64 / 1048576.0);
        sessions.push(session);
    }
    // More load times: every session loads b.html, then a.html again, one after another.
    for page in ["b", "a"] {
        for session in &sessions {
            let started = Instant::now();
            session.goto(&format!("{}/{page}.html", args.base)).await?;
            loads_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    for session in sessions {
        session.close().await;
    }
    Ok(serde_json::json!({"pss_mb": pss_mb, "load_ms": loads_ms}))
}

async fn click(args: &Args, pool: BrowserPool) -> anyhow::Result<serde_json::Value> {
    let block = match args.block.trim() {
        "" => String::new(),
        list => {
            let names: Vec<String> = list.split(',').map(|s| format!("{:?}", s.trim())).collect();
            format!("block = [{}]\n", names.join(", "))
        }
    };
    let mut recipe = format!(
        "site = \"sub\"\ndomains = [\"bench.test\"]\n{block}[[steps]]\ngoto = \"{{{{website}}}}/a.html\"\n"
    );
    for _ in 0..args.clicks {
        recipe.push_str("[[steps]]\nclick = \"#next\"\nnavigates = true\n");
    }
    let recipe = parse_recipe("bench.toml", &recipe)?;
    let src = Source::default();
    let env = RecipeEnv::new(
        pool,
        &MailSettings::from_source(&src)?,
        ImageSettings::from_source(&src)?,
        TotpSettings::from_source(&src)?,
    )?;
    let driver = RecipeDriver::new(Arc::new(recipe), env);
    let tasks: Vec<Task> = (0..args.contexts)
        .map(|i| {
            serde_json::from_value(serde_json::json!({
                "id": format!("bench-{i}"), "domain": "bench.test", "website": args.base,
                "email": "bench@example.test", "username": "bench", "password": "x",
            }))
        })
        .collect::<Result<_, _>>()?;
    let runs = futures::future::join_all(tasks.iter().map(|t| driver.run(t, None))).await;
    let mut click_ms = Vec::new();
    for run in runs {
        if let Err(e) = &run.result {
            anyhow::bail!("run failed: {e}\n{}", run.log);
        }
        for line in run.log.lines() {
            // "step 3 click #next: ok (812 ms)"
            if line.contains(" click #next: ok (")
                && let Some(ms) = line.rsplit('(').next().and_then(|r| r.strip_suffix(" ms)"))
            {
                click_ms.push(ms.parse::<f64>().context("step time")?);
            }
        }
    }
    Ok(serde_json::json!({"click_ms": click_ms}))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let pool = pool(&args, dir.path())?;
    let out = match args.mode {
        Mode::Pss => pss(&args, &pool).await,
        Mode::Click => click(&args, pool.clone()).await,
    };
    pool.shutdown().await;
    println!("{}", out?);
    Ok(())
}
