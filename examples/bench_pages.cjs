// The plain puppeteer-core side of scripts/bench-pages: the same steps as `examples/bench_pages.rs click` on
// the same site with the same Chromium binary and flags. --contexts browser contexts at once, each: goto
// a.html, then --clicks times "wait until #next is visible, click it, wait for the new page's load event"
// (puppeteer's waitForNavigation default, as our navigates = true waits for readyState complete).
// --block image,font,... blocks those resource types with the same DevTools calls as our executor
// (Fetch.enable by resourceType, Fetch.failRequest BlockedByClient). Prints one JSON object.
// Usage: node examples/bench_pages.cjs --base http://127.0.0.1:PORT --chromium PATH --contexts 4 --clicks 10
// Needs `npm i puppeteer-core` (scripts/bench-pages installs it under target/bench-pages).
const puppeteer = require('puppeteer-core');

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

// The executor's flags (src/browser/instance.rs FLAGS), headless, its window size.
const FLAGS = [
  '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', '--disable-crash-reporter',
  '--disable-breakpad', '--no-default-browser-check', '--password-store=basic', '--window-size=1280,900',
];

const CDP_TYPES = {
  image: 'Image', font: 'Font', media: 'Media', stylesheet: 'Stylesheet', script: 'Script', xhr: 'XHR',
  fetch: 'Fetch', websocket: 'WebSocket', other: 'Other',
};

async function block(page, list) {
  if (!list.length) return;
  const cdp = await page.createCDPSession();
  cdp.on('Fetch.requestPaused', (e) => {
    cdp.send('Fetch.failRequest', { requestId: e.requestId, errorReason: 'BlockedByClient' }).catch(() => {});
  });
  const patterns = list.map((t) => ({ urlPattern: '*', resourceType: CDP_TYPES[t], requestStage: 'Request' }));
  await cdp.send('Fetch.enable', { patterns });
}

async function run(browser, base, clicks, list) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await block(page, list);
  await page.goto(`${base}/a.html`, { waitUntil: 'load' });
  const times = [];
  for (let i = 0; i < clicks; i++) {
    const t0 = performance.now();
    await page.waitForSelector('#next', { visible: true });
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#next')]);
    times.push(performance.now() - t0);
  }
  await context.close();
  return times;
}

async function main() {
  const base = arg('base');
  const contexts = Number(arg('contexts', 4));
  const clicks = Number(arg('clicks', 10));
  const list = arg('block', '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const args = [...FLAGS];
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  const browser = await puppeteer.launch({
    executablePath: arg('chromium', '/usr/lib/chromium/chromium'),
    headless: true,
    defaultViewport: null,
    args,
  });
  try {
    const runs = await Promise.all(Array.from({ length: contexts }, () => run(browser, base, clicks, list)));
    console.log(JSON.stringify({ click_ms: runs.flat() }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
