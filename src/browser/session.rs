//! One task's browser context and page, and the generic page actions recipes are made of (go to, fill, click,
//! select, check, upload, evaluate, read the URL, HTML, cookies, screenshot). Dropping a session disposes of its
//! context in the background; [`Session::close`] does it in line.

use std::sync::Arc;
use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::browser::BrowserContextId;
use chromiumoxide::cdp::browser_protocol::dom::SetFileInputFilesParams;
use chromiumoxide::cdp::browser_protocol::input::{
    DispatchMouseEventParams, DispatchMouseEventType, InsertTextParams, MouseButton,
};
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, EventLoadEventFired, StopLoadingParams,
};
use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams,
};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::listeners::EventStream;
use chromiumoxide::page::ScreenshotParams;
use futures::StreamExt;
use serde_json::Value;
use tokio_util::task::TaskTracker;

use super::BrowserError;
use super::blocking::{Blocker, Resource};
use super::instance::Instance;

/// A page's load events ([`Session::load_events`]).
pub struct LoadEvents(EventStream<EventLoadEventFired>);

impl std::fmt::Debug for LoadEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoadEvents")
    }
}

impl LoadEvents {
    /// Resolves at the page's next load event (a page finished loading); never once the page is gone.
    pub async fn next(&mut self) {
        if self.0.next().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}

/// A fresh browser context with one page, for one task. Its cookies and storage are its own.
pub struct Session {
    instance: Arc<Instance>,
    context: Option<BrowserContextId>,
    page: Page,
    tracker: TaskTracker,
    blocker: Blocker,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("pid", &self.instance.pid)
            .finish()
    }
}

fn page_err(what: &str) -> impl Fn(chromiumoxide::error::CdpError) -> BrowserError + '_ {
    move |e| BrowserError::Page(format!("{what}: {e}"))
}

impl Session {
    pub(super) async fn open(
        instance: Arc<Instance>,
        tracker: TaskTracker,
    ) -> Result<Self, BrowserError> {
        let browser = &instance.browser;
        let context = browser
            .create_browser_context(CreateBrowserContextParams::default())
            .await
            .map_err(page_err("cannot create a browser context"))?;
        let params = CreateTargetParams::builder()
            .url("about:blank")
            .browser_context_id(context.clone())
            .build()
            .map_err(BrowserError::Page)?;
        let page = match browser.new_page(params).await {
            Ok(page) => page,
            Err(e) => {
                let _ = browser.dispose_browser_context(context).await;
                return Err(page_err("cannot open a page")(e));
            }
        };
        Ok(Self {
            instance,
            context: Some(context),
            page,
            tracker,
            blocker: Blocker::default(),
        })
    }

    /// Main pid of the browser this session runs in.
    pub fn browser_pid(&self) -> u32 {
        self.instance.pid
    }

    /// True once the browser behind this session died.
    pub fn browser_dead(&self) -> bool {
        self.instance.is_dead()
    }

    /// The underlying chromiumoxide page, for actions not covered here.
    pub fn page(&self) -> &Page {
        &self.page
    }

    /// Blocks the page's requests for exactly these kinds of resource from now on (an empty list blocks
    /// nothing); what the page already loaded stays. Setting what is blocked already costs nothing.
    ///
    /// # Errors
    /// [`BrowserError::Page`] when the page is gone.
    pub async fn block(&self, kinds: &[Resource]) -> Result<(), BrowserError> {
        self.blocker.set(&self.page, &self.tracker, kinds).await
    }

    /// Navigates and waits for the load to finish.
    ///
    /// # Errors
    /// [`BrowserError::Page`] on a navigation error (DNS, refused connection, bad URL).
    pub async fn goto(&self, url: &str) -> Result<(), BrowserError> {
        self.page
            .goto(url)
            .await
            .map_err(page_err("navigation failed"))?;
        Ok(())
    }

    /// Stops whatever the page is still loading, like the Stop button: a navigation waiting for its answer
    /// (e.g. a form submit) is abandoned and its connection closed, so it does not complete in the background.
    ///
    /// # Errors
    /// [`BrowserError::Page`] when the page is gone.
    pub(crate) async fn stop_loading(&self) -> Result<(), BrowserError> {
        self.page
            .execute(StopLoadingParams::default())
            .await
            .map_err(page_err("cannot stop loading"))?;
        Ok(())
    }

    /// Evaluates a JavaScript expression (awaiting a promise) and returns its JSON value (`Null` for undefined).
    ///
    /// # Errors
    /// [`BrowserError::Page`] when it throws or the page is gone.
    pub async fn eval(&self, expression: &str) -> Result<Value, BrowserError> {
        let params = EvaluateParams::builder()
            .expression(expression)
            .await_promise(true)
            .return_by_value(true)
            .build()
            .map_err(BrowserError::Page)?;
        let result = self
            .page
            .evaluate_expression(params)
            .await
            .map_err(page_err("script failed"))?;
        Ok(result.value().cloned().unwrap_or(Value::Null))
    }

    /// Calls a JavaScript function source with JSON arguments: `(<function>)(...args)`.
    ///
    /// # Errors
    /// As [`Session::eval`].
    pub async fn call(&self, function: &str, args: &[Value]) -> Result<Value, BrowserError> {
        let args: Vec<String> = args.iter().map(Value::to_string).collect();
        self.eval(&format!("({function})({})", args.join(",")))
            .await
    }

    /// Replaces the value of the first element matching `selector` with `text`, typed as text input
    /// (`Input.insertText`, so frameworks see real input events), then fires `change`.
    ///
    /// # Errors
    /// [`BrowserError::NoElement`] when nothing matches.
    pub async fn fill(&self, selector: &str, text: &str) -> Result<(), BrowserError> {
        self.call(JS_FOCUS_CLEAR, &[selector.into()])
            .await
            .and_then(found(selector))?;
        if !text.is_empty() {
            self.page
                .execute(InsertTextParams::new(text))
                .await
                .map_err(page_err("typing failed"))?;
        }
        self.call(JS_CHANGED, &[selector.into()]).await?;
        Ok(())
    }

    /// Clicks the first element matching `selector` with real mouse events (moved, pressed, released at its
    /// centre; scrolled into view first when it is not). Four round trips to the page: under load each one
    /// waits for the renderer, so no more are made (chromiumoxide's `Element::click` makes nine, one of them
    /// waiting for a frame).
    ///
    /// # Errors
    /// [`BrowserError::NoElement`] when nothing matches, [`BrowserError::Page`] when it cannot be clicked.
    pub async fn click(&self, selector: &str) -> Result<(), BrowserError> {
        let point = self.call(JS_CLICK_POINT, &[selector.into()]).await?;
        let (Some(x), Some(y)) = (point["x"].as_f64(), point["y"].as_f64()) else {
            return Err(match point.is_null() {
                true => BrowserError::NoElement(selector.to_owned()),
                false => {
                    BrowserError::Page(format!("{selector:?} cannot be clicked: it has no size"))
                }
            });
        };
        let moved = DispatchMouseEventParams::new(DispatchMouseEventType::MouseMoved, x, y);
        let mut pressed = DispatchMouseEventParams::new(DispatchMouseEventType::MousePressed, x, y);
        pressed.button = Some(MouseButton::Left);
        pressed.buttons = Some(1);
        pressed.click_count = Some(1);
        let mut released = pressed.clone();
        released.r#type = DispatchMouseEventType::MouseReleased;
        released.buttons = Some(0);
        for event in [moved, pressed, released] {
            self.page
                .execute(event)
                .await
                .map_err(page_err("click failed"))?;
        }
        Ok(())
    }

    /// The page's load events from now on: subscribe before an action that navigates, then await
    /// [`LoadEvents::next`] to learn at once that a page finished loading.
    ///
    /// # Errors
    /// [`BrowserError::Page`] when the page is gone.
    pub async fn load_events(&self) -> Result<LoadEvents, BrowserError> {
        let events = self
            .page
            .event_listener::<EventLoadEventFired>()
            .await
            .map_err(page_err("cannot watch page loads"))?;
        Ok(LoadEvents(events))
    }

    /// Chooses the option of a `<select>` whose value or visible text is `choice`.
    ///
    /// # Errors
    /// [`BrowserError::NoElement`] when the select is missing, [`BrowserError::Page`] when the option is.
    pub async fn select(&self, selector: &str, choice: &str) -> Result<(), BrowserError> {
        let r = self
            .call(JS_SELECT, &[selector.into(), choice.into()])
            .await?;
        match r.as_str() {
            Some("ok") => Ok(()),
            Some("no-option") => Err(BrowserError::Page(format!(
                "{selector:?} has no option {choice:?}"
            ))),
            _ => Err(BrowserError::NoElement(selector.to_owned())),
        }
    }

    /// Sets a checkbox or radio to `on` (clicking it only when it differs).
    ///
    /// # Errors
    /// [`BrowserError::NoElement`] when nothing matches.
    pub async fn check(&self, selector: &str, on: bool) -> Result<(), BrowserError> {
        self.call(JS_CHECK, &[selector.into(), on.into()])
            .await
            .and_then(found(selector))
    }

    /// Puts a local file into the file input matching `selector` (fires `input` and `change`).
    ///
    /// # Errors
    /// [`BrowserError::NoElement`] when nothing matches, [`BrowserError::Page`] when the file cannot be set.
    pub async fn upload(&self, selector: &str, path: &std::path::Path) -> Result<(), BrowserError> {
        let element = self
            .page
            .find_element(selector)
            .await
            .map_err(|_| BrowserError::NoElement(selector.to_owned()))?;
        let mut params = SetFileInputFilesParams::new(vec![path.display().to_string()]);
        params.backend_node_id = Some(element.backend_node_id);
        self.page
            .execute(params)
            .await
            .map_err(page_err("file upload failed"))?;
        Ok(())
    }

    /// The page's current URL.
    ///
    /// # Errors
    /// [`BrowserError::Page`] when the page is gone.
    pub async fn url(&self) -> Result<String, BrowserError> {
        let v = self.eval("location.href").await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// The page's HTML as it is now.
    ///
    /// # Errors
    /// [`BrowserError::Page`] when the page is gone.
    pub async fn html(&self) -> Result<String, BrowserError> {
        self.page
            .content()
            .await
            .map_err(page_err("cannot read HTML"))
    }

    /// A PNG screenshot of the whole page.
    ///
    /// # Errors
    /// [`BrowserError::Page`] when the page is gone.
    pub async fn screenshot(&self) -> Result<Vec<u8>, BrowserError> {
        let params = ScreenshotParams::builder()
            .format(CaptureScreenshotFormat::Png)
            .full_page(true)
            .build();
        self.page
            .screenshot(params)
            .await
            .map_err(page_err("screenshot failed"))
    }

    /// This context's cookies for the current URL as a `Cookie` header value (`name=value; …`).
    ///
    /// # Errors
    /// [`BrowserError::Page`] when the page is gone.
    pub async fn cookie_header(&self) -> Result<String, BrowserError> {
        let cookies = self
            .page
            .get_cookies()
            .await
            .map_err(page_err("cannot read cookies"))?;
        let pairs: Vec<String> = cookies
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        Ok(pairs.join("; "))
    }

    /// Disposes of the context (closing its page) and ends the task's accounting.
    pub async fn close(mut self) {
        if let Some(context) = self.context.take() {
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                self.instance.browser.dispose_browser_context(context),
            )
            .await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.blocker.stop();
        let context = self.context.take();
        if let (Some(context), Ok(rt)) = (context, tokio::runtime::Handle::try_current()) {
            let instance = Arc::clone(&self.instance);
            // Dropped mid-task (a timeout cancelled the recipe): dispose in the background, then end.
            self.tracker.spawn_on(
                async move {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        instance.browser.dispose_browser_context(context),
                    )
                    .await;
                    instance.end();
                },
                &rt,
            );
        } else {
            self.instance.end();
        }
    }
}

fn found(selector: &str) -> impl Fn(Value) -> Result<(), BrowserError> + '_ {
    move |v| match v.as_bool() {
        Some(true) => Ok(()),
        _ => Err(BrowserError::NoElement(selector.to_owned())),
    }
}

/// The centre of the element's first box with an area, in viewport coordinates (scrolled to the middle of
/// the viewport when not wholly inside it); null when nothing matches, `{size: 0}` when it has no box.
const JS_CLICK_POINT: &str = r#"(sel) => {
  const el = document.querySelector(sel);
  if (!el) return null;
  const box = () => Array.from(el.getClientRects()).find(r => r.width * r.height > 1);
  let r = box();
  if (r && (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth)) {
    el.scrollIntoView({block: 'center', inline: 'center', behavior: 'instant'});
    r = box();
  }
  return r ? {x: r.left + r.width / 2, y: r.top + r.height / 2} : {size: 0};
}"#;

const JS_FOCUS_CLEAR: &str = r#"(sel) => {
  const el = document.querySelector(sel);
  if (!el) return false;
  el.scrollIntoView({block: 'center'});
  el.focus();
  if (el.isContentEditable) { el.textContent = ''; }
  else if ('value' in el) {
    const proto = Object.getPrototypeOf(el);
    const setter = Object.getOwnPropertyDescriptor(proto, 'value');
    if (setter && setter.set) setter.set.call(el, ''); else el.value = '';
    el.dispatchEvent(new Event('input', {bubbles: true}));
  }
  return true;
}"#;

const JS_CHANGED: &str = r#"(sel) => {
  const el = document.querySelector(sel);
  if (el) el.dispatchEvent(new Event('change', {bubbles: true}));
  return !!el;
}"#;

const JS_SELECT: &str = r#"(sel, choice) => {
  const el = document.querySelector(sel);
  if (!el || !el.options) return 'missing';
  const opt = Array.from(el.options).find(o => o.value === choice || o.textContent.trim() === choice);
  if (!opt) return 'no-option';
  el.value = opt.value;
  el.dispatchEvent(new Event('input', {bubbles: true}));
  el.dispatchEvent(new Event('change', {bubbles: true}));
  return 'ok';
}"#;

const JS_CHECK: &str = r#"(sel, on) => {
  const el = document.querySelector(sel);
  if (!el) return false;
  if (el.checked !== on) el.click();
  return true;
}"#;
