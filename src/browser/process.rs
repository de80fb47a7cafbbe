//! Chromium's process tree as Linux shows it in `/proc`: liveness, descendants, summed PSS, killing a tree,
//! and finding the leftovers of an executor that was killed (SIGKILL leaves Chromium orphaned).
//! Profiles live at `<root>/<owner>/<n>` where `<owner>` is `<pid>.<start time>` of the executor process, so
//! a leftover is any Chromium whose `--user-data-dir` is under an owner that no longer runs.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// One process: its parent, state letter and start time (clock ticks since boot).
#[derive(Debug, Clone)]
struct Stat {
    ppid: u32,
    state: char,
    start: u64,
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// True while `pid` exists and is not a zombie.
pub(crate) fn is_alive(pid: u32) -> bool {
    read_stat(pid).is_some_and(|s| s.state != 'Z' && s.state != 'X')
}

fn all_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// `pid` and all its descendants.
pub(crate) fn tree(pid: u32) -> Vec<u32> {
    let parents: HashMap<u32, u32> = all_pids()
        .into_iter()
        .filter_map(|p| Some((p, read_stat(p)?.ppid)))
        .collect();
    let mut found = vec![pid];
    let mut seen: HashSet<u32> = found.iter().copied().collect();
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        for (&child, &pp) in &parents {
            if pp == parent && seen.insert(child) {
                found.push(child);
            }
        }
        i += 1;
    }
    found
}

/// Proportional set size of one process in bytes (0 when unreadable).
fn pss_bytes(pid: u32) -> u64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Summed PSS of `pid`'s tree in bytes. PSS, not RSS: RSS counts shared pages once per process.
pub(crate) fn tree_pss_bytes(pid: u32) -> u64 {
    tree(pid).into_iter().map(pss_bytes).sum()
}

/// Sends SIGKILL to every pid (through `kill(1)`: this crate forbids `unsafe`, hence no libc).
pub(crate) fn kill_all(pids: &[u32]) {
    signal_all("-KILL", pids);
}

/// Sends SIGTERM to `pid`: Chromium's own orderly exit (it closes its windows and children).
pub(crate) fn terminate(pid: u32) {
    signal_all("-TERM", &[pid]);
}

fn signal_all(signal: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let result = std::process::Command::new("kill")
        .arg(signal)
        .args(pids.iter().map(u32::to_string))
        .stderr(std::process::Stdio::null())
        .status();
    if let Err(err) = result {
        tracing::warn!(error = %err, "cannot run kill(1) to stop Chromium processes");
    }
}

/// This process's owner tag, `<pid>.<start time>`: unique across pid reuse.
pub(crate) fn own_tag() -> String {
    let pid = std::process::id();
    let start = read_stat(pid).map_or(0, |s| s.start);
    format!("{pid}.{start}")
}

fn parse_tag(tag: &str) -> Option<(u32, u64)> {
    let (pid, start) = tag.split_once('.')?;
    Some((pid.parse().ok()?, start.parse().ok()?))
}

/// True when the process named by an owner tag still runs.
fn owner_alive(tag: &str) -> bool {
    parse_tag(tag).is_some_and(|(pid, start)| {
        read_stat(pid).is_some_and(|s| s.start == start && s.state != 'Z')
    })
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Kills the Chromium trees left under `root` by owners that no longer run, and removes their profiles.
/// Returns how many processes were killed.
pub(crate) fn clean_leftovers(root: &Path) -> usize {
    let Ok(dir) = std::fs::read_dir(root) else {
        return 0;
    };
    let dead: Vec<PathBuf> = dir
        .filter_map(|e| e.ok())
        .filter(|e| {
            // Only directories named like an owner tag: a misconfigured root must not lose other files.
            let name = e.file_name();
            let name = name.to_str().unwrap_or("");
            parse_tag(name).is_some() && !owner_alive(name)
        })
        .map(|e| e.path())
        .collect();
    let mut killed = 0;
    for owner_dir in dead {
        let marker = format!("--user-data-dir={}/", owner_dir.display());
        // A Chromium may fork a child between the listing and the kill, and a dying one may still be
        // writing its profile: repeat until no process is left and the directory is gone (bounded).
        for _ in 0..CLEAN_ROUNDS {
            let roots: Vec<u32> = all_pids()
                .into_iter()
                .filter(|&p| is_alive(p) && cmdline(p).contains(&marker))
                .collect();
            let mut pids: Vec<u32> = roots.iter().flat_map(|&p| tree(p)).collect();
            pids.sort_unstable();
            pids.dedup();
            pids.retain(|&p| is_alive(p));
            killed += pids.len();
            kill_all(&pids);
            wait_dead(&pids);
            let _ = std::fs::remove_dir_all(&owner_dir);
            if pids.is_empty() && !owner_dir.exists() {
                break;
            }
        }
    }
    killed
}

/// Waits (bounded) until none of `pids` is alive any more.
fn wait_dead(pids: &[u32]) {
    for _ in 0..CLEAN_ROUNDS {
        if !pids.iter().any(|&p| is_alive(p)) {
            return;
        }
        std::thread::sleep(CLEAN_PAUSE);
    }
}

/// Bounds of the leftover clean-up: rounds of kill-and-remove, and the pause while killed processes die.
const CLEAN_ROUNDS: usize = 20;
const CLEAN_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_with_a_live_owner_tag() {
        let me = std::process::id();
        assert!(is_alive(me));
        assert!(owner_alive(&own_tag()));
        assert!(!owner_alive("4000000000.1"));
        assert!(!owner_alive("junk"));
        assert_eq!(parse_tag("12.34"), Some((12, 34)));
        assert_eq!(parse_tag("tmp"), None);
        assert!(tree_pss_bytes(me) > 0);
        assert!(tree(me).contains(&me));
    }
}
