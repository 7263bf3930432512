// End-to-end test of the querier's web UI in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core). The Rust tests start the real servers and run this script; it can also be run by
// hand against any running querier:
//
//   E2E_CONFIG='{"base":"http://127.0.0.1:10902","screenshots":"/tmp/shots"}' node ui/tests/e2e.mjs
//
// Config (JSON in E2E_CONFIG):
//   base            URL of the page (the querier's HTTP address, with any route prefix)     required
//   screenshots     directory for PNG screenshots                                          required
//   chromium        browser binary (default: $CHROMIUM or /usr/bin/chromium)
//   query           PromQL to run (default rate(total_http_requests[1m]))
//   rowLabel        a label every result row must show (default instance)
//   histogram       a native histogram metric to show in the table (optional)
//   replicaLabel    when set: rows must not show it with dedup on, and must with dedup off
//   stores          when set: {"minHealthy": N, "kinds": ["sidecar", ...]} checked on /stores
//   graphRange      graph range to show (default 5m)
//   downStore       when set: after the checks above, print `WAITING down-store` and wait for a
//                   line on stdin (the caller stops that store meanwhile); then the query must
//                   still answer with a warning, and /stores must show that endpoint DOWN
//   completion      a prefix whose completion list must offer `query`'s metric (optional)
//
// Every step prints one line; the first failure saves a screenshot and exits non-zero.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const config = JSON.parse(process.env.E2E_CONFIG ?? '{}');
if (!config.base || !config.screenshots) {
  console.error('E2E_CONFIG must give at least {"base": ..., "screenshots": ...}');
  process.exit(2);
}
const base = config.base.replace(/\/$/, '');
const query = config.query ?? 'rate(total_http_requests[1m])';
const rowLabel = config.rowLabel ?? 'instance';
mkdirSync(config.screenshots, { recursive: true });

const browser = await chromium.launch({
  executablePath: config.chromium ?? process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  // This machine's network is closed: without these Chromium keeps trying to reach Google's hosts.
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-dev-shm-usage',
  ],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const consoleErrors = [];
page.on('console', (msg) => {
  if (msg.type() === 'error') consoleErrors.push(msg.text());
});
page.on('pageerror', (err) => consoleErrors.push(`page error: ${err.message}`));

let stdinLines = null;
/** The next line the caller writes to our stdin. */
function nextStdinLine() {
  stdinLines ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  return stdinLines.next().then((r) => {
    if (r.done) throw new Error('stdin closed while waiting for the caller');
    return r.value;
  });
}

let step = 'start';
const shot = async (name) => {
  const path = join(config.screenshots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
};
const check = (cond, what) => {
  if (!cond) throw new Error(what);
};
const ok = (what) => console.log(`ok   ${step}: ${what}`);

/** Types an expression into the CodeMirror editor and runs it with the Execute button. */
async function runQuery(expr) {
  const editor = page.locator('.cm-content');
  await editor.click();
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(expr);
  await page.keyboard.press('Escape'); // close a completion list, if one opened
  await page.getByTestId('execute').click();
  return waitSettled();
}

/** Waits for the panel to leave `loading`; returns done or error. */
async function waitSettled() {
  await page.waitForFunction(
    () => {
      const s = document.querySelector('[data-testid=panel]')?.getAttribute('data-status');
      return s === 'done' || s === 'error';
    },
    undefined,
    { timeout: 30000 },
  );
  return page.getByTestId('panel').getAttribute('data-status');
}

async function messages() {
  return (await page.getByTestId('messages').innerText()).trim();
}

async function rows() {
  return page.getByTestId('result-row').allInnerTexts();
}

/** Runs the query until it has result rows (the data may still be arriving). */
async function runUntilRows(expr, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await runQuery(expr);
    const status = await page.getByTestId('panel').getAttribute('data-status');
    const r = await rows();
    if (status === 'done' && r.length > 0) return r;
    if (Date.now() > deadline) throw new Error(`no rows for ${expr} (status ${status}): ${await messages()}`);
    await page.waitForTimeout(1000);
  }
}

try {
  step = 'open';
  const resp = await page.goto(`${base}/`);
  check(resp && resp.ok(), `GET ${base}/ answered ${resp?.status()}`);
  await page.locator('.cm-content').waitFor();
  ok(`page loaded, title "${await page.title()}"`);

  step = 'table';
  const tableRows = await runUntilRows(query);
  check(
    tableRows.every((r) => r.includes(`${rowLabel}=`)),
    `every row shows ${rowLabel}=: ${tableRows.join(' | ')}`,
  );
  ok(`${tableRows.length} rows for ${query}, e.g. ${tableRows[0].replace(/\s+/g, ' ')}`);
  await shot('01-table');

  if (config.replicaLabel) {
    step = 'dedup';
    const label = `${config.replicaLabel}=`;
    check(await page.getByTestId('dedup').isChecked(), 'dedup is on by default');
    check(!tableRows.some((r) => r.includes(label)), `dedup on, yet a row shows ${label}: ${tableRows.join(' | ')}`);
    await page.getByTestId('dedup').uncheck();
    await waitSettled();
    // Every replica must have enough samples for the query; the later ones may still be starting.
    let raw = await rows();
    for (const deadline = Date.now() + 60000; raw.length <= tableRows.length; ) {
      check(Date.now() < deadline, `dedup off gives more rows (${raw.length}) than on (${tableRows.length})`);
      await page.waitForTimeout(1000);
      await page.getByTestId('execute').click();
      await waitSettled();
      raw = await rows();
    }
    check(raw.every((r) => r.includes(label)), `dedup off: every row shows ${label}: ${raw.join(' | ')}`);
    check(new URL(page.url()).searchParams.get('dedup') === '0', `URL records dedup=0: ${page.url()}`);
    ok(`dedup off: ${raw.length} rows, each with ${label}; dedup on: ${tableRows.length} rows without it`);
    await shot('02-dedup-off');
    await page.getByTestId('dedup').check();
    await waitSettled();
    const again = await rows();
    check(!again.some((r) => r.includes(label)), `dedup back on hides ${label}`);
    ok(`dedup back on: ${again.length} rows`);
  }

  step = 'graph';
  await page.getByTestId('tab-graph').click();
  await waitSettled();
  // A short range: the data may be only seconds old.
  await page.getByTestId('range').fill(config.graphRange ?? '5m');
  await page.getByTestId('range').press('Enter');
  const canvas = page.getByTestId('graph-canvas');
  let drawnSeries = 0;
  let drawnPoints = 0;
  for (const deadline = Date.now() + 60000; ; ) {
    check((await waitSettled()) === 'done', `graph query failed: ${await messages()}`);
    if ((await canvas.count()) > 0) {
      drawnSeries = Number(await canvas.getAttribute('data-series'));
      drawnPoints = Number(await canvas.getAttribute('data-points'));
      if (drawnSeries > 0 && drawnPoints > drawnSeries * 3) break;
    }
    check(Date.now() < deadline, `graph drew ${drawnSeries} series, ${drawnPoints} points`);
    await page.waitForTimeout(2000);
    await page.getByTestId('execute').click();
  }
  // Count coloured pixels: the lines are really on the canvas, not just attributes.
  const colored = await canvas.evaluate((c) => {
    const ctx = c.getContext('2d');
    const { data } = ctx.getImageData(0, 0, c.width, c.height);
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
      if (a > 200 && Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
    }
    return n;
  });
  check(colored > 200, `only ${colored} coloured pixels on the graph`);
  const legend = await page.getByTestId('legend-item').allInnerTexts();
  check(legend.length === drawnSeries, `legend has ${legend.length} entries for ${drawnSeries} series`);
  const box = await page.locator('.chart-overlay').boundingBox();
  await page.mouse.move(box.x + box.width - 24, box.y + box.height / 2);
  await page.getByTestId('graph-hover').waitFor({ state: 'visible', timeout: 5000 });
  const hover = await page.getByTestId('graph-hover').innerText();
  check(/\d{4}-\d{2}-\d{2} \d{2}:\d{2}/.test(hover), `hover box shows a time: ${hover}`);
  ok(`${drawnSeries} series, ${drawnPoints} points, ${colored} coloured pixels, hover "${hover.split('\n')[0]}"`);
  await shot('03-graph');

  step = 'stacked';
  await page.getByTestId('stacked').check();
  check((await waitSettled()) === 'done', `stacked graph failed: ${await messages()}`);
  ok(`stacked graph drew ${await canvas.getAttribute('data-series')} series`);
  await shot('04-graph-stacked');
  await page.getByTestId('stacked').uncheck();
  await waitSettled();
  await page.getByTestId('tab-table').click();
  await waitSettled();

  step = 'parse-error';
  const status = await runQuery('sum(rate(total_http_requests[1m])');
  check(status === 'error', `a broken query ends in error, not ${status}`);
  const err = await page.getByTestId('alert-error').innerText();
  check(/parse error/i.test(err), `error box shows the parse error: ${err}`);
  const pos = await page.getByTestId('error-position').innerText();
  check(pos.includes('^'), `error box points at the position: ${pos}`);
  ok(`error shown: ${err.split('\n')[0]}`);
  await shot('05-parse-error');

  if (config.histogram) {
    step = 'histogram';
    await runUntilRows(config.histogram);
    const hist = page.getByTestId('histogram').first();
    await hist.waitFor();
    await hist.locator('summary').click();
    const text = await hist.innerText();
    check(/count: \S+, sum: \S+/.test(text), `histogram shows count and sum: ${text}`);
    const buckets = await hist.locator('.bucket-table tbody tr').count();
    check(buckets > 0, 'histogram shows its buckets');
    ok(`${text.split('\n')[0].trim()} with ${buckets} bucket rows`);
    await shot('06-histogram');
  }

  if (config.completion) {
    step = 'completion';
    const editor = page.locator('.cm-content');
    await editor.click();
    await page.keyboard.press('ControlOrMeta+a');
    await page.keyboard.press('Delete');
    await page.keyboard.type(config.completion, { delay: 30 });
    const list = page.locator('.cm-tooltip-autocomplete');
    await list.waitFor({ timeout: 10000 });
    const metric = /[a-zA-Z_:][a-zA-Z0-9_:]*(?=\[|\{|\))/.exec(query.replace(/^\w+\(/, ''))?.[0] ?? '';
    await page.waitForFunction(
      (m) => document.querySelector('.cm-tooltip-autocomplete')?.textContent?.includes(m),
      metric,
      { timeout: 10000 },
    );
    ok(`completion of "${config.completion}" offers ${metric}`);
    await shot('07-completion');
    await page.keyboard.press('Escape');
  }

  if (config.stores) {
    step = 'stores';
    await page.goto(`${base}/stores`);
    await page.getByTestId('stores').waitFor({ timeout: 15000 });
    const all = page.getByTestId('store-row');
    const n = await all.count();
    const healthy = await page.locator('[data-testid=store-row][data-health=up]').count();
    const texts = await all.allInnerTexts();
    check(
      n >= config.stores.minHealthy && healthy === n,
      `${healthy} of ${n} stores healthy, want all and at least ${config.stores.minHealthy}: ${texts.join(' | ')}`,
    );
    for (const kind of config.stores.kinds ?? []) {
      check((await page.locator(`[data-testid=store-row][data-kind="${kind}"]`).count()) > 0, `no ${kind} on the stores page`);
    }
    ok(`${n} stores, all UP: ${texts.map((t) => t.split('\t')[0]).join(', ')}`);
    await shot('08-stores');
  }

  if (config.downStore) {
    step = 'store-down';
    // The caller stops that store now; we go on when it says so on stdin.
    console.log(`WAITING down-store ${config.downStore}`);
    await nextStdinLine();
    await page.goto(`${base}/graph`);
    await page.locator('.cm-content').waitFor();
    let warning = '';
    for (const deadline = Date.now() + 30000; ; ) {
      const status = await runQuery(query);
      check(status === 'done', `with one store down and partial response on, the query still answers: ${await messages()}`);
      const warnings = await page.getByTestId('alert-warning').allInnerTexts();
      warning = warnings.find((w) => w.length > 0) ?? '';
      if (warning) break;
      check(Date.now() < deadline, 'no warning shown for the down store');
      await page.waitForTimeout(1000);
    }
    check((await rows()).length > 0, 'the remaining replica still answers');
    ok(`query warns: ${warning.split('\n')[0]}`);
    await shot('09-query-warning');

    await page.goto(`${base}/stores`);
    const row = page.locator(`[data-testid=store-row]`, { hasText: config.downStore });
    for (const deadline = Date.now() + 30000; ; ) {
      await page.getByTestId('stores').waitFor({ timeout: 15000 });
      if ((await row.count()) > 0 && (await row.getAttribute('data-health')) === 'down') break;
      check(Date.now() < deadline, `${config.downStore} never shown DOWN`);
      await page.waitForTimeout(1000);
      await page.getByRole('button', { name: 'Refresh' }).click();
    }
    const rowText = await row.innerText();
    check(/DOWN/.test(rowText), `the row says DOWN: ${rowText}`);
    check((await page.locator('[data-testid=store-row][data-health=up]').count()) > 0, 'the other store stays UP');
    ok(`stores page: ${rowText.replace(/\s+/g, ' ')}`);
    await shot('10-store-down');
  }

  const unexpected = consoleErrors.filter((e) => !/Failed to load resource|completion request failed/.test(e));
  check(unexpected.length === 0, `console errors: ${unexpected.join(' | ')}`);
  console.log(`PASS screenshots in ${config.screenshots}`);
  await browser.close();
  process.exit(0); // stdin may still be open: do not wait for it
} catch (e) {
  const path = await shot(`failure-${step}`).catch(() => '(no screenshot)');
  console.error(`FAIL ${step}: ${e instanceof Error ? e.message : e}\nscreenshot: ${path}`);
  if (consoleErrors.length) console.error(`console errors:\n${consoleErrors.join('\n')}`);
  await browser.close();
  process.exit(1);
}
