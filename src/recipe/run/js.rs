//! The JavaScript the step runner evaluates in the page: one wait/status probe, reads and text searches.

pub(super) const JS_STATUS: &str = r#"(cond, arg, errSel, errTexts, capSel) => {
  const vis = (el) => !!el && !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  for (const s of capSel) { if (vis(document.querySelector(s))) return {captcha: s}; }
  for (const s of errSel) {
    for (const el of document.querySelectorAll(s)) {
      const t = (el.innerText || '').trim();
      if (vis(el) && t) return {error: t.slice(0, 500)};
    }
  }
  // innerText lays the page out: read it only when needed (a loading page is busy enough).
  const body = (errTexts.length || cond === 'text') && document.body ? document.body.innerText : '';
  for (const t of errTexts) {
    const line = body.split('\n').find(l => l.toLowerCase().includes(t.toLowerCase()));
    if (line) return {error: line.trim().slice(0, 500)};
  }
  let ok = false, status;
  if (cond === 'visible' || cond === 'visible-mark') ok = vis(document.querySelector(arg));
  else if (cond === 'exists') ok = !!document.querySelector(arg);
  else if (cond === 'text') ok = body.includes(arg);
  else if (cond === 'navigated') {
    ok = window.__pwBeforeNav === undefined && document.readyState === 'complete';
    const nav = performance.getEntriesByType('navigation')[0];
    status = nav && nav.responseStatus ? nav.responseStatus : 0;
  } else ok = true;
  // Marks the page a navigating click starts from: 'navigated' holds only on a page without the mark.
  if (ok && cond === 'visible-mark') window.__pwBeforeNav = true;
  return {ok, href: location.href, status};
}"#;

pub(super) const JS_NAV_STATUS: &str = "(() => { const n = performance.getEntriesByType('navigation')[0]; \
                             return n && n.responseStatus ? n.responseStatus : 0; })()";

pub(super) const JS_READ: &str = r#"(sel, attr) => {
  const el = document.querySelector(sel);
  if (!el) return '';
  if (attr === 'value') return el.value || '';
  if ((attr === 'href' || attr === 'src') && el[attr]) return el[attr];
  if (attr) return el.getAttribute(attr) || '';
  return el.innerText || el.textContent || '';
}"#;

pub(super) const JS_VISIBLE_TEXT: &str = r#"(sel) => {
  for (const el of document.querySelectorAll(sel)) {
    if (el.offsetWidth || el.offsetHeight || el.getClientRects().length)
      return ((el.innerText || '').trim() || sel).slice(0, 500);
  }
  return null;
}"#;

pub(super) const JS_FIND_TEXT: &str = r#"(text) => {
  const body = document.body ? document.body.innerText : '';
  const line = body.split('\n').find(l => l.toLowerCase().includes(text.toLowerCase()));
  return line ? line.trim().slice(0, 500) : null;
}"#;
