// MedSearch search page: one image in, the most similar stored cases and their neighbour vote out.
// No dependencies and nothing fetched from elsewhere; the API key lives only in a variable of this module.

const $ = (id) => document.getElementById(id);

const el = {
  collection: $('collection'),
  keyPanel: $('key-panel'), keyMessage: $('key-message'), keyInput: $('api-key'),
  keyOk: $('api-key-ok'), keyCancel: $('api-key-cancel'),
  drop: $('drop'), file: $('file'), fileName: $('file-name'),
  preview: $('preview'), previewCaption: $('preview-caption'),
  k: $('k'), modality: $('modality'), bodyPart: $('body-part'), sex: $('sex'),
  minAge: $('min-age'), maxAge: $('max-age'), label: $('label'), excludePatient: $('exclude-patient'),
  search: $('search'), cancel: $('cancel'),
  error: $('error'), status: $('status'), progress: $('progress'), elapsed: $('elapsed'),
  warnings: $('warnings'), votesBox: $('votes-box'), votes: $('votes'), unlabelled: $('unlabelled'),
  results: $('results'),
  detail: $('detail'), detailClose: $('detail-close'), detailSlices: $('detail-slices'), detailMeta: $('detail-meta'),
};

// ---- State -------------------------------------------------------------------------------------------------

let apiKey = null;               // only ever here: never in storage, cookies or the DOM
let keyRequest = null;           // { promise, resolve, reject } while the key panel is open
let query = null;                // { file, base64 } of the chosen file (base64 read once, on first search)
let current = null;              // { seq, controller, timer } of the search in flight
let seq = 0;
let neighbours = [];
let catalog = 'loading';       // filter lists: 'loading' | 'loaded' | 'failed'

// ---- API ---------------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message, retryAfterMs) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

const CodeByStatus = { 400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 412: 9, 429: 8, 499: 1, 500: 13, 501: 12, 503: 14, 504: 4 };

async function readError(res) {
  const text = await res.text().catch(() => '');
  let code;
  let message = '';
  try {
    const body = JSON.parse(text);
    if (typeof body.code === 'number') code = body.code;
    message = typeof body.message === 'string' ? body.message : '';
  } catch {
    message = text.slice(0, 300).trim();
  }
  const ms = Number(res.headers.get('retry-after-ms'));
  const s = Number(res.headers.get('retry-after'));
  const retryAfterMs = ms > 0 ? ms : s > 0 ? s * 1000 : undefined;
  return new ApiError(res.status, code ?? CodeByStatus[res.status], message, retryAfterMs);
}

/** GET (no body) or POST (JSON body) to this server; a 401 asks for a key and tries again. */
async function api(path, body, signal) {
  for (;;) {
    const sentKey = apiKey;
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (sentKey) headers.Authorization = `Bearer ${sentKey}`;
    const res = await fetch(path, {
      method: body === undefined ? 'GET' : 'POST',
      headers, body, signal, cache: 'no-store', credentials: 'same-origin',
    });
    if (res.ok) return res.json();
    const error = await readError(res);
    if (res.status !== 401) throw error;
    if (apiKey && apiKey !== sentKey) continue; // another request got a new key meanwhile
    await askForKey(sentKey ? 'That key was not accepted. Enter a valid API key.' : null, signal);
  }
}

// ---- API key panel -----------------------------------------------------------------------------------------

function askForKey(retryMessage, signal) {
  if (!keyRequest) {
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    promise.catch(() => {});
    keyRequest = { promise, resolve, reject };
    el.keyMessage.textContent = 'This server needs an API key. It is kept only in this page\'s memory and is forgotten when the page is closed or reloaded.';
    el.keyPanel.hidden = false;
    el.keyInput.value = '';
    el.keyInput.focus();
  }
  if (retryMessage) el.keyMessage.textContent = retryMessage;
  if (!signal) return keyRequest.promise;
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new DOMException('Aborted', 'AbortError'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    keyRequest.promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function closeKeyPanel() {
  el.keyInput.value = '';
  el.keyPanel.hidden = true;
  keyRequest = null;
}

el.keyPanel.addEventListener('submit', (e) => {
  e.preventDefault();
  const key = el.keyInput.value.trim();
  if (!key || /[^\x21-\x7e]/.test(key)) {
    el.keyMessage.textContent = key ? 'An API key is printable ASCII without spaces.' : 'Enter the API key, or Cancel.';
    el.keyInput.focus();
    return;
  }
  apiKey = key;
  const request = keyRequest;
  closeKeyPanel();
  request?.resolve();
  if (catalog === 'failed') loadCatalog();
});

el.keyCancel.addEventListener('click', () => {
  const request = keyRequest;
  closeKeyPanel();
  request?.reject(new ApiError(401, 16, 'no API key given'));
});

// ---- Filter lists (stats and labels) -----------------------------------------------------------------------

const fmt = (n) => Number(n ?? 0).toLocaleString('en');

function fillSelect(select, entries) {
  const keep = select.value;
  while (select.options.length > 1) select.remove(1);
  for (const [value, count] of entries) {
    const option = new Option(`${value} (${fmt(count)})`, value);
    select.add(option);
  }
  select.value = [...select.options].some((o) => o.value === keep) ? keep : '';
}

async function loadCatalog() {
  catalog = 'loading';
  const [stats, labels] = await Promise.allSettled([api('/v1/stats'), api('/v1/labels')]);
  if (stats.status === 'fulfilled') {
    const s = stats.value;
    const modalities = Object.entries(s.casesByModality ?? {}).sort((a, b) => a[0].localeCompare(b[0]));
    fillSelect(el.modality, modalities);
    el.collection.textContent = `${fmt(s.cases)} cases${s.modelId ? ` · model ${s.modelId}` : ''}`;
  }
  if (labels.status === 'fulfilled') {
    const list = (labels.value.labels ?? []).map((l) => [l.label ?? '', l.cases]).filter(([l]) => l);
    list.sort((a, b) => a[0].localeCompare(b[0]));
    fillSelect(el.label, list);
  }
  catalog = stats.status === 'fulfilled' && labels.status === 'fulfilled' ? 'loaded' : 'failed';
  if (catalog === 'failed') {
    const failed = [stats, labels].find((r) => r.status === 'rejected');
    el.collection.textContent = `Filter lists unavailable: ${describe(failed.reason)}`;
  }
}

// ---- File input and drop zone ------------------------------------------------------------------------------

function setFile(file) {
  if (!file) return;
  query = { file, base64: null };
  el.fileName.textContent = `${file.name || 'unnamed file'} · ${sizeText(file.size)}`;
  el.preview.hidden = true;
  el.preview.removeAttribute('src');
  el.previewCaption.textContent = 'The query appears here as the engine sees it.';
  search();
}

function sizeText(bytes) {
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(0)} kB`;
  return `${bytes} bytes`;
}

el.file.addEventListener('change', () => setFile(el.file.files?.[0]));

for (const type of ['dragenter', 'dragover']) {
  el.drop.addEventListener(type, (e) => {
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
    el.drop.classList.add('over');
  });
}
el.drop.addEventListener('dragleave', (e) => {
  if (!el.drop.contains(e.relatedTarget)) el.drop.classList.remove('over');
});
el.drop.addEventListener('drop', (e) => {
  e.preventDefault();
  el.drop.classList.remove('over');
  const files = e.dataTransfer?.files;
  if (files?.length) setFile(files[0]);
});
// A file dropped beside the zone must not navigate away from the page.
window.addEventListener('dragover', (e) => e.preventDefault());
window.addEventListener('drop', (e) => e.preventDefault());

/** Base64 of a file without building huge strings by hand: the browser encodes it as a data: URL. */
function readBase64(file, signal) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    const onAbort = () => reader.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    reader.onload = () => {
      const url = String(reader.result);
      resolve(url.slice(url.indexOf(',') + 1));
    };
    reader.onerror = () => reject(new Error(`the file could not be read (${reader.error?.message ?? 'unknown error'})`));
    reader.onabort = () => reject(new DOMException('Aborted', 'AbortError'));
    reader.onloadend = () => signal.removeEventListener('abort', onAbort);
    reader.readAsDataURL(file);
  });
}

// ---- Search ------------------------------------------------------------------------------------------------

function filter() {
  const f = {};
  if (el.modality.value) f.modalities = [el.modality.value];
  const parts = el.bodyPart.value.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length) f.bodyParts = parts;
  if (el.sex.value) f.sexes = [el.sex.value];
  const min = el.minAge.value.trim();
  const max = el.maxAge.value.trim();
  if (min !== '' && Number.isFinite(Number(min))) f.minAgeYears = Number(min);
  if (max !== '' && Number.isFinite(Number(max))) f.maxAgeYears = Number(max);
  if (el.label.value) f.labelsAny = [el.label.value];
  return Object.keys(f).length ? f : undefined;
}

async function search() {
  if (!query) {
    showError('Choose or drop an image first.');
    return;
  }
  stop();
  const mine = ++seq;
  const controller = new AbortController();
  const started = performance.now();
  const tick = () => { el.elapsed.textContent = `${Math.floor((performance.now() - started) / 1000)} s`; };
  current = { seq: mine, controller, timer: setInterval(tick, 250) };
  tick();
  showError('');
  clearResults();
  el.progress.hidden = false;
  el.cancel.hidden = false;
  el.results.setAttribute('aria-busy', 'true');

  try {
    const q = query;
    if (q.base64 === null) {
      el.status.textContent = 'Reading file…';
      q.base64 = await readBase64(q.file, controller.signal);
    }
    el.status.textContent = 'Searching…';
    const body = {
      search: {
        image: q.base64,
        imageName: q.file.name || 'upload',
        k: Number(el.k.value),
        filter: filter(),
        excludeSamePatient: el.excludePatient.checked,
        includeThumbnails: true,
        includeQueryPreview: true,
      },
      weighting: 'WEIGHTING_SIMILARITY',
    };
    const answer = await api('/v1/classify', JSON.stringify(body), controller.signal);
    if (mine !== seq) return;
    render(answer);
  } catch (e) {
    if (mine !== seq) return; // superseded by a newer search
    if (e?.name === 'AbortError') {
      el.status.textContent = 'Search cancelled.';
    } else {
      el.status.textContent = 'Search failed.';
      showError(describe(e));
    }
  } finally {
    if (mine === seq) stop();
  }
}

/** Ends the search in flight, if any (its answer is then ignored), and the progress display. */
function stop() {
  if (!current) return;
  clearInterval(current.timer);
  current.controller.abort();
  current = null;
  el.progress.hidden = true;
  el.cancel.hidden = true;
  el.results.removeAttribute('aria-busy');
}

el.cancel.addEventListener('click', () => {
  if (!current) return;
  current.controller.abort(); // the search's catch says it was cancelled
});

el.search.addEventListener('click', () => search());
for (const control of [el.k, el.modality, el.sex, el.label, el.excludePatient, el.bodyPart, el.minAge, el.maxAge]) {
  control.addEventListener('change', () => { if (query) search(); });
}

// ---- Errors in words ---------------------------------------------------------------------------------------

function describe(e) {
  if (e instanceof ApiError) {
    const m = e.message;
    const said = m ? ` (Server: ${m})` : '';
    if (e.status === 413) return 'The file is too large for the server to accept.';
    switch (e.code) {
      case 16: return 'An API key is required, and none was accepted. Search again to enter a key.';
      case 7: return `Permission denied: this API key may not do this.${said}`;
      case 8:
        if (/too large|larger than|exceeds/i.test(m)) return `The file is too large for the server to accept.${said}`;
        return `The server is busy — retry later${e.retryAfterMs ? ` (in about ${Math.ceil(e.retryAfterMs / 1000)} s)` : ''}.`;
      case 9: return `Model mismatch: the query cannot be compared with this collection's cases, which were embedded by another model.${said}`;
      case 5: return `Not found.${said}`;
      case 4: return 'The search took too long and was stopped by the server — retry later.';
      case 14: return 'The server is unavailable — retry later.';
      case 3:
        if (/exclude_same_patient/.test(m)) {
          return '“Exclude this patient” needs to know the query\'s patient, and this image has none (only DICOM files with a Patient ID carry one). Untick “Exclude this patient” or search with a DICOM file.';
        }
        if (/not a PNG, JPEG or DICOM|not an image|file signature/i.test(m)) {
          return `Unsupported file: “${query?.file.name ?? 'the file'}” is not a DICOM, PNG or JPEG image.${said}`;
        }
        if (/embedding|dimensions/i.test(m)) return `Model mismatch: the query does not fit this collection's model.${said}`;
        if (/\bimage\b/.test(m)) return `The image could not be read.${said}`;
        return `The request was refused.${said}`;
      default: return `Server error (HTTP ${e.status}).${said}`;
    }
  }
  if (e instanceof TypeError) return 'Cannot reach the MedSearch server. Check the connection and retry.';
  return `Something went wrong: ${e?.message ?? e}`;
}

function showError(text) {
  el.error.textContent = text;
  el.error.hidden = !text;
}

// ---- Rendering ---------------------------------------------------------------------------------------------

const png = (b64) => `data:image/png;base64,${String(b64).replace(/-/g, '+').replace(/_/g, '/')}`;

function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Age in years as a ten-year band ("40–49"; "90+"): never the exact age or any birth date. */
function ageBand(age) {
  const years = Number(age);
  if (age === undefined || age === '' || !Number.isFinite(years) || years < 0) return '';
  if (years >= 90) return '90+';
  const low = Math.floor(years / 10) * 10;
  return `${low}–${low + 9}`;
}

const hiddenKey = (key) => /patient[\s_-]*(hash|id|name)|birth/i.test(key);
const pct = (x) => `${(x * 100).toFixed(1)}%`;
const clamp01 = (x) => Math.min(1, Math.max(0, Number.isFinite(x) ? x : 0));

function clearResults() {
  neighbours = [];
  el.results.replaceChildren();
  el.votes.replaceChildren();
  el.votesBox.hidden = true;
  el.warnings.replaceChildren();
  el.warnings.hidden = true;
  closeDetail();
}

function render(answer) {
  neighbours = answer.neighbours ?? [];
  const k = neighbours.length;

  if (answer.queryPreview) {
    el.preview.src = png(answer.queryPreview);
    el.preview.alt = `Query image ${query.file.name} as the engine sees it`;
    el.preview.hidden = false;
    el.previewCaption.textContent = 'Query as the engine sees it (after windowing).';
  } else {
    el.previewCaption.textContent = 'The server sent no preview of the query.';
  }

  const warnings = answer.warnings ?? [];
  for (const w of warnings) el.warnings.append(make('li', '', w));
  el.warnings.hidden = warnings.length === 0;

  const labels = answer.labels ?? [];
  for (const l of labels) el.votes.append(voteBar(l, k));
  const unlabelled = Number(answer.unlabelledNeighbours ?? 0);
  el.unlabelled.textContent = `${unlabelled} unlabelled neighbour${unlabelled === 1 ? '' : 's'} not counted.`;
  el.votesBox.hidden = k === 0;

  neighbours.forEach((n, i) => el.results.append(tile(n, i)));
  el.status.textContent = `${k} result${k === 1 ? '' : 's'}`;
}

function voteBar(l, k) {
  const score = Number(l.score ?? 0);
  const threshold = Number(l.threshold ?? 0);
  const positive = l.positive === true;
  const point = l.operatingPoint || 'default';
  const count = Number(l.neighbours ?? 0);

  const vote = make('div', 'vote');
  vote.dataset.label = l.label ?? '';
  vote.dataset.score = String(score);
  vote.dataset.positive = String(positive);

  const head = make('div', 'vote-head');
  head.append(
    make('span', 'vote-label', l.label ?? ''),
    make('span', 'vote-score', pct(score)),
    make('span', `decision ${positive ? 'positive' : 'negative'}`, positive ? 'positive' : 'negative'),
    make('span', 'muted', `at operating point “${point}” (threshold ${pct(threshold)})`),
  );

  const bar = make('div', 'bar');
  bar.setAttribute('role', 'img');
  bar.setAttribute('aria-label', `${l.label}: score ${pct(score)}, threshold ${pct(threshold)}, ${positive ? 'positive' : 'negative'}`);
  const fill = make('div', `fill ${positive ? 'positive' : 'negative'}`);
  fill.style.width = `${clamp01(score) * 100}%`;
  const mark = make('div', 'threshold');
  mark.style.left = `${clamp01(threshold) * 100}%`;
  mark.title = `Operating point “${point}”: ${pct(threshold)}`;
  bar.append(fill, mark);

  const evidence = make('div', 'evidence muted', `${count} of ${k} neighbour${k === 1 ? '' : 's'} carry this label`);
  vote.append(head, bar, evidence);
  return vote;
}

function facts(meta) {
  return [meta.modality, ageBand(meta.age), meta.sex].filter(Boolean).join(' · ');
}

function tile(n, index) {
  const meta = n.metadata ?? {};
  const button = make('button', 'result');
  button.type = 'button';
  button.dataset.index = String(index);

  if (n.thumbnail) {
    const img = make('img', 'thumb');
    img.src = png(n.thumbnail);
    img.alt = '';
    img.decoding = 'async';
    button.append(img);
  } else {
    button.append(make('span', 'thumb none', 'no thumbnail'));
  }
  const sim = make('span', 'sim-row');
  sim.append(make('span', 'rank', `#${n.rank ?? index + 1}`), make('span', 'muted', ' similarity '),
    make('span', 'similarity', Number(n.similarity ?? 0).toFixed(3)));
  button.append(sim, make('span', 'labels', (n.labels ?? []).join(', ')));
  const f = facts(meta);
  if (f) button.append(make('span', 'facts muted', f));
  if (meta.study_date) button.append(make('span', 'date muted', meta.study_date));

  button.addEventListener('click', () => openDetail(index));
  return button;
}

// ---- Detail panel ------------------------------------------------------------------------------------------

function openDetail(index) {
  const n = neighbours[index];
  if (!n) return;
  for (const t of el.results.querySelectorAll('.result')) {
    const on = t.dataset.index === String(index);
    t.classList.toggle('selected', on);
    if (on) t.setAttribute('aria-current', 'true'); else t.removeAttribute('aria-current');
  }
  el.detail.querySelector('#detail-title').textContent = `Case #${n.rank ?? index + 1}`;

  const rows = [
    ['similarity', Number(n.similarity ?? 0).toFixed(3)],
    ['labels', (n.labels ?? []).join(', ') || 'none'],
  ];
  const meta = n.metadata ?? {};
  for (const key of Object.keys(meta).sort()) {
    if (hiddenKey(key)) continue;
    rows.push(key === 'age' ? ['age band', ageBand(meta[key])] : [key, meta[key]]);
  }
  el.detailMeta.replaceChildren();
  for (const [key, value] of rows) el.detailMeta.append(make('dt', '', key), make('dd', '', value));

  el.detailSlices.replaceChildren();
  const b = n.bestSlices;
  if (b) {
    el.detailSlices.append(
      slice(b.queryThumbnail, `Query slice${b.querySlice ? `: ${b.querySlice}` : ''}`),
      slice(b.hitThumbnail, 'Matching slice of this case'),
      make('p', 'muted slice-sim', `Best slice pair similarity ${Number(b.similarity ?? 0).toFixed(3)}`),
    );
  }
  el.detailSlices.hidden = !b;
  el.detail.hidden = false;
  document.body.classList.add('with-detail');
}

function slice(b64, caption) {
  const figure = make('figure', 'slice');
  if (b64) {
    const img = make('img');
    img.src = png(b64);
    img.alt = caption;
    figure.append(img);
  } else {
    figure.append(make('span', 'thumb none', 'no thumbnail'));
  }
  figure.append(make('figcaption', 'muted', caption));
  return figure;
}

function closeDetail() {
  el.detail.hidden = true;
  document.body.classList.remove('with-detail');
  for (const t of el.results.querySelectorAll('.result.selected')) {
    t.classList.remove('selected');
    t.removeAttribute('aria-current');
  }
}

el.detailClose.addEventListener('click', () => {
  const selected = el.results.querySelector('.result.selected');
  closeDetail();
  selected?.focus();
});
el.detail.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') el.detailClose.click();
});

// ---- Start -------------------------------------------------------------------------------------------------

loadCatalog();
