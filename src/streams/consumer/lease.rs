//! Lease renewal: a live executor resets the idle time of the entries it runs, so XAUTOCLAIM never takes
//! them, while a dead executor's entries go idle and are reclaimed. Never steals an entry back.

use std::collections::HashSet;

use tokio_util::sync::CancellationToken;

use super::{Consumer, GROUP, StreamError};
use crate::task::Site;

/// Renews our own entries only: an entry another consumer reclaimed meanwhile is not stolen back.
/// KEYS[1] stream; ARGV[1] group; ARGV[2] consumer; ARGV[3..] entry ids. Returns the ids still ours.
pub(super) const RENEW_LUA: &str = r"
local kept = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #p > 0 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    kept[#kept + 1] = ARGV[i]
  end
end
return kept
";

impl Consumer {
    /// Resets the idle time of every entry we hold and still own (`XCLAIM … 0 … JUSTID`, which does not
    /// count as a delivery). Returns the entries we lost to another consumer; they are no longer renewed.
    ///
    /// # Errors
    /// [`StreamError::Unavailable`].
    pub async fn renew_leases(&self) -> Result<Vec<(Site, String)>, StreamError> {
        let held: Vec<(Site, String)> = match self.held.lock() {
            Ok(h) => h.iter().cloned().collect(),
            Err(_) => Vec::new(),
        };
        let mut lost = Vec::new();
        for site in Site::ALL {
            let ids: Vec<&String> = held
                .iter()
                .filter(|(s, _)| *s == site)
                .map(|h| &h.1)
                .collect();
            if ids.is_empty() {
                continue;
            }
            let kept: Vec<String> = self
                .renew
                .key(self.keys.tasks(site))
                .arg(GROUP)
                .arg(&self.name)
                .arg(&ids)
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(StreamError::redis("lease renewal"))?;
            let kept: HashSet<&String> = kept.iter().collect();
            lost.extend(
                ids.into_iter()
                    .filter(|id| !kept.contains(id))
                    .map(|id| (site, id.clone())),
            );
        }
        if let Ok(mut h) = self.held.lock() {
            for l in &lost {
                h.remove(l);
            }
        }
        Ok(lost)
    }

    /// Renews leases every `lease_renew` until `cancel`; errors are logged and retried next tick.
    pub async fn run_lease_renewal(&self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.settings.lease_renew);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while cancel.run_until_cancelled(tick.tick()).await.is_some() {
            match self.renew_leases().await {
                Ok(lost) => {
                    for (site, id) in lost {
                        tracing::warn!(%site, entry_id = %id, "lease lost: another executor reclaimed the entry");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "lease renewal failed; will retry"),
            }
        }
    }
}
