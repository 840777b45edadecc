// Browser test of the search page against a server that requires API keys, run by
// tests/MedSearch.EndToEnd.Tests/SearchPageTests.cs:
//
//   node tests/browser/search-page-auth.mjs URL IMAGE_PNG READ_KEY OUT_DIR
//
// The page must ask for a key on the first 401, refuse a wrong one without losing the form, work with the right
// one, and keep it only in memory (no storage, no cookie). Exits 0 with one JSON line, or 1 with
// "search-page-auth: FAIL <state>: why" on stderr and OUT_DIR/auth-failure.png.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const [url, imagePath, key, outDir] = process.argv.slice(2);
if (!url || !imagePath || !key || !outDir) {
  process.stderr.write('usage: node search-page-auth.mjs URL IMAGE_PNG READ_KEY OUT_DIR\n');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

let state = 'launch';
const fail = (message) => { throw new Error(message); };
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const pageErrors = [];
page.on('pageerror', (error) => pageErrors.push(String(error)));
try {
  state = 'asks-for-key';
  await page.goto(url, { waitUntil: 'load' });
  await page.locator('#api-key').waitFor({ state: 'visible', timeout: 15_000 });
  await page.screenshot({ path: join(outDir, 'auth-asks.png'), fullPage: true });

  state = 'wrong-key';
  await page.fill('#api-key', 'msk_not-a-key');
  await page.click('#api-key-ok');
  await page.waitForTimeout(1500);
  if (!(await page.locator('#api-key').isVisible())) fail('after a wrong key the key form is gone');

  state = 'right-key';
  await page.fill('#api-key', key);
  await page.click('#api-key-ok');
  await page.locator('#api-key').waitFor({ state: 'hidden', timeout: 15_000 });
  await page.setInputFiles('#file', imagePath);
  await page.waitForFunction(() => document.querySelectorAll('#results .result').length > 0, null, { timeout: 60_000 });
  const first = Number((await page.locator('#results .result .similarity').first().textContent()).trim());
  if (!(first >= 0.999)) fail(`the first hit's similarity is ${first}, not the image itself`);
  await page.screenshot({ path: join(outDir, 'auth-results.png'), fullPage: true });

  state = 'key-in-memory-only';
  const kept = await page.evaluate((secret) => ({
    storage: [...Object.values(localStorage), ...Object.values(sessionStorage)].some((v) => v.includes(secret)),
    cookie: document.cookie.includes(secret),
    dom: document.documentElement.outerHTML.includes(secret) || document.querySelector('#api-key').value.includes(secret),
  }), key);
  if (kept.storage || kept.cookie || kept.dom) fail(`the key is kept outside the page's memory: ${JSON.stringify(kept)}`);
  if (pageErrors.length > 0) fail(`uncaught page errors: ${pageErrors.join(' | ')}`);
  process.stdout.write(JSON.stringify({ ok: true, first }) + '\n');
} catch (error) {
  process.stderr.write(`search-page-auth: FAIL ${state}: ${error.message}\n`);
  await page.screenshot({ path: join(outDir, 'auth-failure.png'), fullPage: true }).catch(() => {});
  process.exitCode = 1;
} finally {
  await browser.close();
}
