//! Resource blocking for one session's page: the resource types a recipe does not need (images, fonts, media,
//! stylesheets, …) are paused by the DevTools Fetch domain (patterns by resource type, so no other request
//! waits on us) and failed as `BlockedByClient`: the site never sees the request, the renderer never holds
//! the bytes. Frames in other renderer processes and service workers are not covered.

use std::sync::{Arc, Mutex};

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::fetch::{
    ContinueRequestParams, DisableParams, EnableParams, EventRequestPaused, FailRequestParams,
    RequestPattern, RequestStage,
};
use chromiumoxide::cdp::browser_protocol::network::{ErrorReason, ResourceType};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::BrowserError;

/// A kind of resource a page loads: a DevTools `Network.ResourceType` other than `Document` (the page
/// itself, which is never blocked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// `<img>`, CSS backgrounds, favicons.
    Image,
    /// Web fonts.
    Font,
    /// `<video>` and `<audio>`.
    Media,
    /// CSS files. Blocking them changes what is visible: an element hidden by CSS shows.
    Stylesheet,
    /// JavaScript files.
    Script,
    /// `XMLHttpRequest`.
    Xhr,
    /// `fetch()`.
    Fetch,
    /// WebSocket connections.
    WebSocket,
    /// Server-sent events.
    EventSource,
    /// Web app manifests.
    Manifest,
    /// Subtitles (`<track>`).
    TextTrack,
    /// `<link rel=prefetch>`.
    Prefetch,
    /// `navigator.sendBeacon` and `<a ping>`.
    Ping,
    /// Anything the renderer does not classify.
    Other,
}

/// Every [`Resource`] by its name in a recipe, and its DevTools type.
const TYPES: &[(&str, Resource, ResourceType)] = &[
    ("image", Resource::Image, ResourceType::Image),
    ("font", Resource::Font, ResourceType::Font),
    ("media", Resource::Media, ResourceType::Media),
    ("stylesheet", Resource::Stylesheet, ResourceType::Stylesheet),
    ("script", Resource::Script, ResourceType::Script),
    ("xhr", Resource::Xhr, ResourceType::Xhr),
    ("fetch", Resource::Fetch, ResourceType::Fetch),
    ("websocket", Resource::WebSocket, ResourceType::WebSocket),
    (
        "eventsource",
        Resource::EventSource,
        ResourceType::EventSource,
    ),
    ("manifest", Resource::Manifest, ResourceType::Manifest),
    ("texttrack", Resource::TextTrack, ResourceType::TextTrack),
    ("prefetch", Resource::Prefetch, ResourceType::Prefetch),
    ("ping", Resource::Ping, ResourceType::Ping),
    ("other", Resource::Other, ResourceType::Other),
];

impl Resource {
    /// Its name in a recipe (lower case), e.g. `"image"`.
    pub fn name(self) -> &'static str {
        TYPES
            .iter()
            .find(|(_, r, _)| *r == self)
            .map_or("other", |(n, _, _)| n)
    }

    /// The resource named `name` (case-insensitive; DevTools' own spelling such as `Image` or `XHR` works).
    ///
    /// # Errors
    /// A message naming the known types when `name` is none of them, or is `document`.
    pub fn parse(name: &str) -> Result<Self, String> {
        let lower = name.trim().to_ascii_lowercase();
        if lower == "document" {
            return Err("\"document\" cannot be blocked: it is the page itself".into());
        }
        TYPES
            .iter()
            .find(|(n, _, _)| *n == lower)
            .map(|(_, r, _)| *r)
            .ok_or_else(|| {
                let known: Vec<&str> = TYPES.iter().map(|(n, _, _)| *n).collect();
                format!(
                    "unknown resource type {name:?} (known: {})",
                    known.join(", ")
                )
            })
    }

    fn cdp(self) -> ResourceType {
        TYPES
            .iter()
            .find(|(_, r, _)| *r == self)
            .map_or(ResourceType::Other, |(_, _, t)| t.clone())
    }

    fn from_cdp(t: &ResourceType) -> Option<Self> {
        TYPES.iter().find(|(_, _, c)| c == t).map(|(_, r, _)| *r)
    }
}

/// What one page blocks now, and the task that fails its paused requests (started on first use).
#[derive(Debug, Default)]
pub(super) struct Blocker {
    /// Sorted, without duplicates. Read by the listener for every paused request.
    blocked: Arc<Mutex<Vec<Resource>>>,
    listening: tokio::sync::Mutex<bool>,
    stop: CancellationToken,
}

/// Paused requests answered at once, at most.
const CONCURRENT_ANSWERS: usize = 16;

impl Blocker {
    /// Blocks exactly `kinds` from now on (requests already made are not touched); nothing to do when that
    /// is what is blocked already.
    pub(super) async fn set(
        &self,
        page: &Page,
        tracker: &TaskTracker,
        kinds: &[Resource],
    ) -> Result<(), BrowserError> {
        let mut want = kinds.to_vec();
        want.sort();
        want.dedup();
        let mut listening = self.listening.lock().await;
        if *self.lock() == want {
            return Ok(());
        }
        if !want.is_empty() && !*listening {
            self.listen(page, tracker).await?;
            *listening = true;
        }
        // The listener reads the new set before the browser pauses by it: a request paused under the old
        // patterns meanwhile is answered by the new set (continued once unblocked).
        *self.lock() = want.clone();
        let sent = if want.is_empty() {
            page.execute(DisableParams::default()).await.map(drop)
        } else {
            let patterns = want
                .iter()
                .map(|r| RequestPattern {
                    url_pattern: Some("*".into()),
                    resource_type: Some(r.cdp()),
                    request_stage: Some(RequestStage::Request),
                })
                .collect::<Vec<_>>();
            let params = EnableParams {
                patterns: Some(patterns),
                handle_auth_requests: None,
            };
            page.execute(params).await.map(drop)
        };
        sent.map_err(|e| BrowserError::Page(format!("cannot set resource blocking: {e}")))
    }

    /// Ends the listener (the session is closing).
    pub(super) fn stop(&self) {
        self.stop.cancel();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Resource>> {
        self.blocked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn listen(&self, page: &Page, tracker: &TaskTracker) -> Result<(), BrowserError> {
        let events = page
            .event_listener::<EventRequestPaused>()
            .await
            .map_err(|e| BrowserError::Page(format!("cannot watch requests: {e}")))?;
        let (page, blocked, stop) = (page.clone(), Arc::clone(&self.blocked), self.stop.clone());
        tracker.spawn(async move {
            let answer_all = events.for_each_concurrent(CONCURRENT_ANSWERS, |event| {
                let (page, blocked) = (page.clone(), Arc::clone(&blocked));
                async move {
                    let kind = Resource::from_cdp(&event.resource_type);
                    let block = kind.is_some_and(|k| {
                        blocked
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .contains(&k)
                    });
                    let id = event.request_id.clone();
                    let answered = if block {
                        let fail = FailRequestParams::new(id, ErrorReason::BlockedByClient);
                        page.execute(fail).await.map(drop)
                    } else {
                        page.execute(ContinueRequestParams::new(id)).await.map(drop)
                    };
                    // The page may be gone (navigated away, closed): nothing is waiting for the answer then.
                    if let Err(e) = answered {
                        tracing::debug!(error = %e, "paused request not answered");
                    }
                }
            });
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = answer_all => {}
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_parse_case_insensitively_and_document_is_refused() {
        assert_eq!(Resource::parse("image"), Ok(Resource::Image));
        assert_eq!(Resource::parse("XHR"), Ok(Resource::Xhr));
        assert_eq!(Resource::parse(" Stylesheet "), Ok(Resource::Stylesheet));
        for (name, r, t) in TYPES {
            assert_eq!((r.name(), r.cdp()), (*name, t.clone()));
            assert_eq!(Resource::from_cdp(t), Some(*r));
        }
        let err = Resource::parse("images").unwrap_err();
        assert!(
            err.starts_with(
                "unknown resource type \"images\" (known: image, font, media, stylesheet"
            ),
            "{err}"
        );
        assert!(
            Resource::parse("document")
                .unwrap_err()
                .contains("page itself")
        );
        assert_eq!(Resource::from_cdp(&ResourceType::Document), None);
    }
}
