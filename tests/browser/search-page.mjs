// Browser test of the search page, run by tests/MedSearch.EndToEnd.Tests/SearchPageTests.cs against a real
// `medsearch serve` (or by hand):
//
//   node tests/browser/search-page.mjs URL IMAGE_PNG OTHER_LABEL_FILTER OUT_DIR
//
// URL: the server's HTTP/1.1 address (the page is at /). IMAGE_PNG: an indexed image whose labels do NOT include
// OTHER_LABEL_FILTER, so that applying the filter visibly changes the results. OUT_DIR: where the screenshots
// (<state>.png) go. Drives Debian's chromium (apt package chromium; .ci/run installs it and `npm ci` installs
// playwright-core): the machine cannot download a browser of its own.
//
// On success prints one JSON line and exits 0; on the first failed check prints "search-page: FAIL <state>: why"
// on stderr, saves OUT_DIR/failure.png when it can, and exits 1.

import { chromium } from 'playwright-core';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const [url, imagePath, otherLabel, outDir] = process.argv.slice(2);
if (!url || !imagePath || !otherLabel || !outDir) {
  process.stderr.write('usage: node search-page.mjs URL IMAGE_PNG OTHER_LABEL_FILTER OUT_DIR\n');
  process.exit(2);
}

const CHROMIUM = '/usr/bin/chromium';
const SEARCH_TIMEOUT_MS = 60_000; // the first search loads the model
const UI_TIMEOUT_MS = 15_000;

class CheckFailed extends Error {}
let state = 'launch';
const check = (condition, message) => {
  if (!condition) throw new CheckFailed(message);
};

mkdirSync(outDir, { recursive: true });
rmSync(join(outDir, 'failure.png'), { force: true });
const screenshots = [];
const shoot = async (page, name) => {
  const file = join(outDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  screenshots.push(file);
};

// Console errors and uncaught exceptions, by the state they happened in.
const consoleErrors = [];
const pageErrors = [];
const ignored = [];

/** Waits for fn(arg) to be truthy in the page; on timeout fails with describe()'s account of what the page shows. */
async function waitFor(page, what, fn, arg, timeout, describe) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 100 });
  } catch (error) {
    if (!(error instanceof Error) || error.name !== 'TimeoutError') throw error;
    throw new CheckFailed(`timed out after ${timeout / 1000}s waiting for ${what}; the page shows ${await describe()}`);
  }
}

/** What the page shows now, for failure messages. */
const snapshot = (page) =>
  page.evaluate(() => {
    const text = (sel) => document.querySelector(sel)?.textContent?.trim().replace(/\s+/g, ' ').slice(0, 300) ?? '(absent)';
    const error = document.querySelector('#error');
    return JSON.stringify({
      results: document.querySelectorAll('#results .result').length,
      labels: [...document.querySelectorAll('#results .result')].map((r) => r.querySelector('.labels')?.textContent?.trim() ?? '(no .labels)'),
      status: text('#status'),
      error: error ? `${error.hidden || getComputedStyle(error).display === 'none' ? '[hidden] ' : ''}${text('#error')}` : '(absent)',
    });
  });

const visible = (page, selector) => page.locator(selector).first().isVisible();

/** Sets the label filter to `label` ('' for none), whether #label is a <select> or a text input. */
async function setLabelFilter(page, label) {
  const field = page.locator('#label');
  const tag = await field.evaluate((el) => el.tagName.toLowerCase());
  if (tag === 'select') {
    // The options come from the server's label list: wait for the one we need.
    await waitFor(page, `#label to offer ${JSON.stringify(label || '(no filter)')}`,
      (wanted) => [...document.querySelectorAll('#label option')].some((o) => (wanted === '' ? o.value === '' : o.value === wanted || o.textContent.trim() === wanted)),
      label, UI_TIMEOUT_MS,
      async () => `options ${JSON.stringify(await field.evaluate((el) => [...el.options].map((o) => ({ value: o.value, text: o.textContent.trim() }))))}`);
    const value = await field.evaluate((el, wanted) => {
      const option = [...el.options].find((o) => (wanted === '' ? o.value === '' : o.value === wanted)) ?? [...el.options].find((o) => o.textContent.trim() === wanted);
      return option.value;
    }, label);
    await field.selectOption(value);
  } else {
    await field.fill(label);
    await field.dispatchEvent('change');
  }
}

/** Parses a shown similarity: "0.9998", "similarity 1.000" or "99.98 %". */
function parseSimilarity(text) {
  const match = /(-?\d+(?:[.,]\d+)?)\s*(%?)/.exec(text);
  if (!match) return NaN;
  const value = Number(match[1].replace(',', '.'));
  return match[2] === '%' ? value / 100 : value;
}

const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
let page;
const summary = { ok: true, url };
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const source = message.location()?.url ?? '';
    // The browser's own request for /favicon.ico is not the page's doing: its 404 is no error of the page.
    if (new URL(source || url, url).pathname === '/favicon.ico') { ignored.push(message.text()); return; }
    consoleErrors.push({ state, text: message.text(), source });
  });
  page.on('pageerror', (error) => pageErrors.push({ state, text: String(error?.stack ?? error) }));

  // (a) Loaded: the title says what it is, nothing went wrong loading it.
  state = 'loaded';
  const response = await page.goto(url, { waitUntil: 'load', timeout: UI_TIMEOUT_MS });
  check(response && response.ok(), `GET ${url} answered ${response ? `${response.status()} ${response.statusText()}` : 'nothing'}`);
  const title = await page.title();
  check(title.includes('MedSearch'), `the page's title is ${JSON.stringify(title)}, expected it to contain "MedSearch"`);
  for (const hook of ['#file', '#k', '#label', '#results', '#error', '#status'])
    check((await page.locator(hook).count()) === 1, `the page has ${await page.locator(hook).count()} elements matching ${hook}, expected 1`);
  await page.waitForLoadState('networkidle', { timeout: UI_TIMEOUT_MS }).catch(() => {});
  await shoot(page, 'loaded');
  check(consoleErrors.length === 0 && pageErrors.length === 0,
    `errors while loading: ${JSON.stringify([...consoleErrors, ...pageErrors])}`);

  // (b) Search by an indexed image: k thumbnails, itself first, a preview, votes summing to 1.
  state = 'results';
  const kText = (await page.locator('#k').inputValue()).trim();
  const k = kText === '' ? 10 : Number.parseInt(kText, 10);
  check(Number.isInteger(k) && k > 0, `#k holds ${JSON.stringify(kText)}, not a positive whole number`);
  await page.setInputFiles('#file', resolve(imagePath));
  await waitFor(page, `${k} results (#k) to appear`, (n) => document.querySelectorAll('#results .result').length === n, k, SEARCH_TIMEOUT_MS, () => snapshot(page));
  await waitFor(page, 'every result thumbnail to load',
    () => [...document.querySelectorAll('#results .result')].every((r) => { const img = r.querySelector('img'); return img && img.complete && img.naturalWidth > 0; }),
    undefined, UI_TIMEOUT_MS,
    async () => JSON.stringify(await page.$$eval('#results .result', (rs) => rs.map((r) => { const img = r.querySelector('img'); return img ? { src: (img.getAttribute('src') ?? '').slice(0, 60), complete: img.complete, naturalWidth: img.naturalWidth } : '(no img)'; }))));
  const firstSimilarityText = (await page.locator('#results .result').first().locator('.similarity').textContent() ?? '').trim();
  const firstSimilarity = parseSimilarity(firstSimilarityText);
  check(firstSimilarity >= 0.999, `the first result's .similarity reads ${JSON.stringify(firstSimilarityText)} (${firstSimilarity}), expected ≥ 0.999: the query image is indexed, it should find itself`);
  const similarities = (await page.locator('#results .result .similarity').allTextContents()).map((t) => parseSimilarity(t.trim()));
  check(similarities.length === k && similarities.every((s) => Number.isFinite(s)), `.similarity texts do not all parse: ${JSON.stringify(await page.locator('#results .result .similarity').allTextContents())}`);
  check(similarities.every((s, i) => i === 0 || s <= similarities[i - 1] + 1e-9), `results are not in decreasing similarity: ${JSON.stringify(similarities)}`);
  await waitFor(page, '#preview to show the query image',
    () => { const img = document.querySelector('#preview'); return img && (img.getAttribute('src') ?? '') !== '' && img.complete && img.naturalWidth > 0; },
    undefined, UI_TIMEOUT_MS,
    async () => `#preview ${JSON.stringify(await page.locator('#preview').evaluate((img) => ({ src: (img.getAttribute('src') ?? '').slice(0, 60), complete: img.complete, naturalWidth: img.naturalWidth })).catch((e) => String(e)))}`);
  const votes = await page.$$eval('#votes .vote[data-label][data-score]', (vs) => vs.map((v) => ({ label: v.dataset.label, score: Number(v.dataset.score), visible: v.getClientRects().length > 0 })));
  check(votes.length > 0, `no vote bars (#votes .vote[data-label][data-score]); #votes holds ${JSON.stringify(await page.locator('#votes').innerHTML().catch(() => '(absent)'))}`);
  check(votes.every((v) => Number.isFinite(v.score) && v.score >= 0 && v.score <= 1), `vote scores are not all in [0, 1]: ${JSON.stringify(votes)}`);
  check(votes.every((v) => v.visible), `vote bars not all shown: ${JSON.stringify(votes)}`);
  const voteSum = votes.reduce((sum, v) => sum + v.score, 0);
  check(Math.abs(voteSum - 1) <= 0.001, `vote scores sum to ${voteSum}, expected 1 ± 0.001 (single-label collection): ${JSON.stringify(votes)}`);
  const labelsBefore = await page.locator('#results .result .labels').allTextContents();
  check(labelsBefore.length === k, `${labelsBefore.length} of ${k} results show .labels`);
  check(labelsBefore.some((t) => !t.includes(otherLabel)),
    `every unfiltered result already shows ${JSON.stringify(otherLabel)} (${JSON.stringify(labelsBefore)}): pick a query image without it, or the filter check proves nothing`);
  check(consoleErrors.length === 0 && pageErrors.length === 0, `errors while searching: ${JSON.stringify([...consoleErrors, ...pageErrors])}`);
  await shoot(page, 'results');
  Object.assign(summary, { k, firstSimilarity: firstSimilarityText, votes: votes.map(({ label, score }) => ({ label, score })) });

  // (e) The same results on a large screen.
  state = 'results-1920';
  await page.setViewportSize({ width: 1920, height: 1080 });
  await shoot(page, 'results-1920');
  await page.setViewportSize({ width: 1280, height: 800 });

  // (c) Filter by the other label: the results refresh and every one carries it.
  state = 'filtered';
  await setLabelFilter(page, otherLabel);
  await waitFor(page, `the results to refresh with only ${JSON.stringify(otherLabel)}`,
    ({ label, n }) => {
      const results = [...document.querySelectorAll('#results .result')];
      return results.length === n && results.every((r) => (r.querySelector('.labels')?.textContent ?? '').includes(label));
    },
    { label: otherLabel, n: k }, SEARCH_TIMEOUT_MS, () => snapshot(page));
  const labelsAfter = await page.locator('#results .result .labels').allTextContents();
  check(consoleErrors.length === 0 && pageErrors.length === 0, `errors while filtering: ${JSON.stringify([...consoleErrors, ...pageErrors])}`);
  await shoot(page, 'filtered');
  summary.filtered = labelsAfter.length;

  // (d) No filter, then a file that is not an image: a readable error, and the page still usable.
  state = 'error';
  await setLabelFilter(page, '');
  const notAnImage = join(outDir, 'not-an-image.txt');
  writeFileSync(notAnImage, 'This is a text file, not a medical image.\n');
  await page.setInputFiles('#file', resolve(notAnImage));
  await waitFor(page, '#error to show a message',
    () => { const e = document.querySelector('#error'); return e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden' && e.textContent.trim() !== ''; },
    undefined, SEARCH_TIMEOUT_MS, () => snapshot(page));
  const errorText = (await page.locator('#error').textContent() ?? '').trim();
  check(!/undefined|\[object|^\s*[{[]/.test(errorText), `#error is not readable: ${JSON.stringify(errorText)}`);
  for (const control of ['#k', '#label', '#search'])
    check(await visible(page, control), `after the error ${control} is not shown; the page shows ${await snapshot(page)}`);
  check((await visible(page, '#drop')) || (await visible(page, '#file')), `after the error neither #drop nor #file is shown`);
  // A failed request is logged by the browser itself as a console error: only uncaught exceptions fail here.
  check(pageErrors.length === 0, `uncaught errors: ${JSON.stringify(pageErrors)}`);
  await shoot(page, 'error');
  summary.error = errorText;

  summary.screenshots = screenshots;
  if (ignored.length) summary.ignoredFaviconErrors = ignored;
  process.stdout.write(JSON.stringify(summary) + '\n');
} catch (error) {
  let shot = '';
  if (page) {
    const file = join(outDir, 'failure.png');
    try { await page.screenshot({ path: file, fullPage: true }); shot = ` (screenshot: ${file})`; } catch { /* the page is gone */ }
  }
  const why = error instanceof CheckFailed ? error.message : String(error?.stack ?? error);
  process.stderr.write(`search-page: FAIL ${state}: ${why}${shot}\n`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
