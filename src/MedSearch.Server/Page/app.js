// MedSearch search page: one image (or the DICOM files of one series or study) in, the most similar stored
// cases (series, studies) and their neighbour vote out.
// No dependencies and nothing fetched from elsewhere; the API key lives only in a variable of this module.

const $ = (id) => document.getElementById(id);

const el = {
  collection: $('collection'),
  keyPanel: $('key-panel'), keyMessage: $('key-message'), keyInput: $('api-key'),
  keyOk: $('api-key-ok'), keyCancel: $('api-key-cancel'),
  level: $('level'), levelHint: $('level-hint'),
  drop: $('drop'), dropHint: $('drop-hint'), file: $('file'), fileLabel: $('file-label'), fileName: $('file-name'),
  setInputs: $('set-inputs'), files: $('files'), folder: $('folder'),
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
let querySet = null;             // { files, names, base64: [], ignored, more } of a series/study query (each file read once)
let shownLevel = 'LEVEL_INSTANCE'; // the level of the results on show
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

// ---- Search level ------------------------------------------------------------------------------------------

/** The most files one series or study query may hold (the server's MaxQueryFiles). */
const MaxQueryFiles = 4096;

const Levels = {
  LEVEL_INSTANCE: {
    noun: 'image', title: 'Case',
    hint: 'Similar single images.',
    drop: 'Drop a DICOM, PNG or JPEG file here',
    status: 'Choose or drop an image to find similar cases.',
    caption: 'The query appears here as the engine sees it.',
  },
  LEVEL_SERIES: {
    noun: 'series', title: 'Series',
    hint: 'Similar whole series: the query is the DICOM files of one series.',
    drop: 'Drop the DICOM files (or the folder) of one series here',
    status: 'Choose or drop the DICOM files of one series to find similar series.',
    caption: 'After the search, a slice of the query appears here.',
  },
  LEVEL_STUDY: {
    noun: 'study', title: 'Study',
    hint: 'Similar whole studies: the query is the DICOM files of one study (all its series).',
    drop: 'Drop the DICOM files (or the folder) of one study here',
    status: 'Choose or drop the DICOM files of one study to find similar studies.',
    caption: 'After the search, a slice of the query appears here.',
  },
};

const levelOf = () => (Object.hasOwn(Levels, el.level.value) ? el.level.value : 'LEVEL_INSTANCE');
const isSet = () => levelOf() !== 'LEVEL_INSTANCE';
const activeQuery = () => (isSet() ? querySet : query);

/** Shows the inputs, hints and chosen query of the selected level. */
function showLevel() {
  const level = Levels[levelOf()];
  const set = isSet();
  el.file.hidden = set;
  el.fileLabel.hidden = set;
  el.setInputs.hidden = !set;
  el.levelHint.textContent = level.hint;
  el.dropHint.textContent = level.drop;
  el.fileName.textContent = set ? setText(querySet) : query ? fileText(query.file) : '';
  clearPreview(level.caption);
}

function clearPreview(caption) {
  el.preview.hidden = true;
  el.preview.removeAttribute('src');
  el.preview.alt = '';
  el.previewCaption.textContent = caption;
}

el.level.addEventListener('change', () => {
  showLevel();
  if (activeQuery()) {
    search();
    return;
  }
  seq++; // the search in flight, if any, is superseded: its answer and its cancellation are ignored
  stop();
  showError('');
  clearResults();
  el.status.textContent = Levels[levelOf()].status;
});

// ---- File input and drop zone ------------------------------------------------------------------------------

const fileText = (file) => `${file.name || 'unnamed file'} · ${sizeText(file.size)}`;

function setText(set) {
  if (!set) return '';
  const n = set.files.length;
  const bytes = set.files.reduce((sum, f) => sum + f.size, 0);
  const count = set.more ? `More than ${fmt(MaxQueryFiles)} files` : `${fmt(n)} file${n === 1 ? '' : 's'}`;
  const ignored = set.ignored ? ` (${fmt(set.ignored)} hidden or empty file${set.ignored === 1 ? '' : 's'} ignored)` : '';
  return `${count} · ${sizeText(bytes)}${ignored}`;
}

function setFile(file) {
  if (!file) return;
  query = { file, base64: null };
  el.fileName.textContent = fileText(file);
  clearPreview('The query appears here as the engine sees it.');
  search();
}

/**
 * The files of a series or study query. The names sent (and shown back in warnings) are the paths below the
 * chosen or dropped folder: the folder's own name, often a patient's, is left out.
 */
function setFiles(list, more = false) {
  const chosen = [];
  let ignored = 0;
  for (const { file, path } of list) {
    if (file.name.startsWith('.') || file.size === 0) ignored++;
    else chosen.push({ file, path: path || file.webkitRelativePath || file.name });
  }
  chosen.sort((a, b) => a.path.localeCompare(b.path, 'en', { numeric: true }));
  const names = chosen.map(({ file, path }, i) => {
    const parts = path.split('/').filter(Boolean);
    return (parts.length > 1 ? parts.slice(1).join('/') : file.name) || `file ${i + 1}`;
  });
  querySet = { files: chosen.map((c) => c.file), names, base64: [], ignored, more };
  el.fileName.textContent = setText(querySet);
  clearPreview(Levels[levelOf()].caption);
  if (chosen.length === 0) {
    querySet = null;
    seq++;
    stop();
    clearResults();
    showError(`No DICOM files were chosen${ignored ? ` (only ${fmt(ignored)} hidden or empty file${ignored === 1 ? '' : 's'})` : ''}. Choose the DICOM files of one ${Levels[levelOf()].noun}.`);
    el.status.textContent = Levels[levelOf()].status;
    return;
  }
  search();
}

function sizeText(bytes) {
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(0)} kB`;
  return `${bytes} bytes`;
}

el.file.addEventListener('change', () => setFile(el.file.files?.[0]));
el.files.addEventListener('change', () => {
  if (!el.files.files?.length) return;
  el.folder.value = '';
  setFiles([...el.files.files].map((file) => ({ file })));
});
el.folder.addEventListener('change', () => {
  if (!el.folder.files?.length) return;
  el.files.value = '';
  setFiles([...el.folder.files].map((file) => ({ file })));
});

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
  if (!isSet()) {
    const files = e.dataTransfer?.files;
    if (files?.length) setFile(files[0]);
    return;
  }
  // Series/study: several files, or folders (walked; their entries can only be had during this event).
  const entries = [...(e.dataTransfer?.items ?? [])]
    .filter((item) => item.kind === 'file')
    .map((item) => item.webkitGetAsEntry?.())
    .filter(Boolean);
  if (entries.some((entry) => entry.isDirectory)) {
    el.status.textContent = 'Collecting the dropped files…';
    collect(entries).then(({ list, more }) => setFiles(list, more), (err) => {
      showError(`The dropped folder could not be read (${err?.message ?? err}). Choose the files or the folder instead.`);
      el.status.textContent = Levels[levelOf()].status;
    });
    return;
  }
  const files = e.dataTransfer?.files;
  if (files?.length) setFiles([...files].map((file) => ({ file })));
});

/** The files under dropped entries, walking folders; stops after MaxQueryFiles + 1 of them (more: true). */
async function collect(entries) {
  const list = [];
  const walk = async (entry) => {
    if (list.length > MaxQueryFiles) return;
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      list.push({ file, path: entry.fullPath });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (batch.length === 0) break;
        for (const child of batch) await walk(child);
        if (list.length > MaxQueryFiles) return;
      }
    }
  };
  for (const entry of entries) await walk(entry);
  const more = list.length > MaxQueryFiles;
  return { list: more ? list.slice(0, MaxQueryFiles + 1) : list, more };
}
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
  const levelName = levelOf();
  const level = Levels[levelName];
  const set = levelName !== 'LEVEL_INSTANCE';
  const q = set ? querySet : query;
  if (!q) {
    showError(set ? `Choose or drop the DICOM files of one ${level.noun} first.` : 'Choose or drop an image first.');
    return;
  }
  if (set && (q.more || q.files.length > MaxQueryFiles)) {
    seq++;
    stop();
    clearResults();
    showError(`${q.more ? `More than ${fmt(MaxQueryFiles)}` : fmt(q.files.length)} files were chosen, but the server takes at most ` +
      `${fmt(MaxQueryFiles)} files for one ${level.noun}, so nothing was sent. Choose the files of one ${level.noun} only.`);
    el.status.textContent = 'Not searched: too many files.';
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
    if (set) {
      await readSet(q, controller.signal);
      el.status.textContent = 'Searching…';
      const answer = await api('/v1/classify', setBody(q, levelName), controller.signal);
      if (mine !== seq) return;
      render(answer, levelName);
      return;
    }
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
    render(answer, levelName);
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

/** Reads the files of a series/study query one after another (each once: a rerun or a retry reuses them). */
async function readSet(q, signal) {
  const n = q.files.length;
  let shown = -Infinity;
  for (let i = 0; i < n; i++) {
    if (q.base64[i] !== undefined) continue;
    const now = performance.now();
    if (now - shown > 250 || i === n - 1) { // #status is a live region: not one announcement per file
      el.status.textContent = `Reading ${fmt(i + 1)}/${fmt(n)} files…`;
      shown = now;
    }
    try {
      q.base64[i] = await readBase64(q.files[i], signal);
    } catch (e) {
      if (e?.name === 'AbortError') throw e;
      throw new Error(`the file “${q.names[i]}” could not be read; it may have been moved or deleted (${e?.message ?? e})`);
    }
  }
}

/**
 * The classify request of a series/study query as a Blob: the base64 strings go in as parts, so no single
 * string of the whole request (up to the server's limit, hundreds of MB) is built.
 */
function setBody(q, levelName) {
  const marker = '__MEDSEARCH_FILES__';
  const json = JSON.stringify({
    search: {
      images: { files: marker, names: q.names },
      level: levelName,
      k: Number(el.k.value),
      filter: filter(),
      excludeSamePatient: el.excludePatient.checked,
      includeThumbnails: true,
    },
    weighting: 'WEIGHTING_SIMILARITY',
  });
  const at = json.indexOf(`"${marker}"`); // files come before names, so this is the files' place
  const parts = [json.slice(0, at), '['];
  q.base64.forEach((b64, i) => parts.push(i ? ',"' : '"', b64, '"'));
  parts.push(']', json.slice(at + marker.length + 2));
  return new Blob(parts, { type: 'application/json' });
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
  control.addEventListener('change', () => { if (activeQuery()) search(); });
}

// ---- Errors in words ---------------------------------------------------------------------------------------

function describe(e) {
  if (e instanceof ApiError) {
    const m = e.message;
    const said = m ? ` (Server: ${m})` : '';
    const set = isSet();
    const noun = Levels[levelOf()].noun;
    const tooLarge = set
      ? `The files are too large together for the server to accept. Choose the files of one ${noun} only, or fewer files.`
      : 'The file is too large for the server to accept.';
    if (e.status === 413) return tooLarge;
    switch (e.code) {
      case 16: return 'An API key is required, and none was accepted. Search again to enter a key.';
      case 7: return `Permission denied: this API key may not do this.${said}`;
      case 8:
        if (/too large|larger than|exceeds/i.test(m)) return `${tooLarge}${said}`;
        return `The server is busy — retry later${e.retryAfterMs ? ` (in about ${Math.ceil(e.retryAfterMs / 1000)} s)` : ''}.`;
      case 9: return `Model mismatch: the query cannot be compared with this collection's cases, which were embedded by another model.${said}`;
      case 5: return `Not found.${said}`;
      case 4: return 'The search took too long and was stopped by the server — retry later.';
      case 14: return 'The server is unavailable — retry later.';
      case 3: {
        const groups = /belong to (\d+) (series|studies)/.exec(m); // the message names UIDs: not shown
        if (groups?.[2] === 'series') return 'The files belong to more than one series; choose one series (or search for the whole study).';
        if (groups?.[2] === 'studies') return 'The files belong to more than one study; choose one study.';
        if (/none of the .*readable DICOM/i.test(m)) {
          return `None of the files is a readable DICOM image of a series. Series and study search takes the DICOM files of one ${noun} (not PNG or JPEG files).`;
        }
        if (/no sampled slice/i.test(m)) return `None of the ${noun}'s sampled slices could be decoded, so it cannot be searched.${said}`;
        if (/images: \d+ files.*at most/i.test(m)) return `Too many files for one ${noun}: the server refused them.${said}`;
        if (/\bimages: no files/.test(m)) return `No files were sent. Choose the DICOM files of one ${noun}.`;
        if (/exclude_same_patient/.test(m) && set) {
          return '“Exclude this patient” needs to know the query\'s patient, and these files carry no Patient ID. Untick “Exclude this patient”.';
        }
        if (/exclude_same_patient/.test(m)) {
          return '“Exclude this patient” needs to know the query\'s patient, and this image has none (only DICOM files with a Patient ID carry one). Untick “Exclude this patient” or search with a DICOM file.';
        }
        if (/not a PNG, JPEG or DICOM|not an image|file signature/i.test(m)) {
          return `Unsupported file: “${query?.file.name ?? 'the file'}” is not a DICOM, PNG or JPEG image.${said}`;
        }
        if (/embedding|dimensions/i.test(m)) return `Model mismatch: the query does not fit this collection's model.${said}`;
        if (/\bimage\b/.test(m)) return `The image could not be read.${said}`;
        if (/\bimages\b/.test(m)) return `The files could not be searched as one ${noun}.${said}`;
        return `The request was refused.${said}`;
      }
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

function render(answer, levelName = 'LEVEL_INSTANCE') {
  neighbours = answer.neighbours ?? [];
  shownLevel = levelName;
  const set = levelName !== 'LEVEL_INSTANCE';
  const k = neighbours.length;

  if (set) {
    // A set has no preview: the query slice that best matches the top hit stands in for it.
    const best = neighbours[0]?.bestSlices;
    if (best?.queryThumbnail) {
      el.preview.src = png(best.queryThumbnail);
      el.preview.alt = `Query slice ${best.querySlice ?? ''}`.trim();
      el.preview.hidden = false;
      el.previewCaption.textContent = `Query slice${best.querySlice ? ` “${best.querySlice}”` : ''}: the one most like the top hit.`;
    } else {
      el.previewCaption.textContent = 'No query slice to show.';
    }
  } else if (answer.queryPreview) {
    el.preview.src = png(answer.queryPreview);
    el.preview.alt = `Query image ${query.file.name} as the engine sees it`;
    el.preview.hidden = false;
    el.previewCaption.textContent = 'Query as the engine sees it (after windowing).';
  } else {
    el.previewCaption.textContent = 'The server sent no preview of the query.';
  }

  const warnings = answer.warnings ?? [];
  const shownWarnings = 50;
  for (const w of warnings.slice(0, shownWarnings)) el.warnings.append(make('li', '', set ? `Left out of the query: ${w}` : w));
  if (warnings.length > shownWarnings) el.warnings.append(make('li', '', `… and ${fmt(warnings.length - shownWarnings)} more.`));
  el.warnings.hidden = warnings.length === 0;

  const labels = answer.labels ?? [];
  for (const l of labels) el.votes.append(voteBar(l, k));
  const unlabelled = Number(answer.unlabelledNeighbours ?? 0);
  el.unlabelled.textContent = `${unlabelled} unlabelled neighbour${unlabelled === 1 ? '' : 's'} not counted.`;
  el.votesBox.hidden = k === 0;

  neighbours.forEach((n, i) => el.results.append(tile(n, i, set)));
  el.status.textContent = `${k} result${k === 1 ? '' : 's'}` +
    (set && warnings.length ? ` · ${fmt(warnings.length)} file${warnings.length === 1 ? '' : 's'} left out of the query` : '');
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

const plural = (n, one, many) => `${fmt(n)} ${Number(n) === 1 ? one : many}`;

/** A series/study hit: modality, slice count (and series count of a study), then age band and sex. */
function volumeFacts(meta) {
  const slices = Number(meta.slices);
  const series = Number(meta.series);
  return [
    meta.modality,
    meta.slices !== undefined && Number.isFinite(slices) ? plural(slices, 'slice', 'slices') : '',
    meta.series !== undefined && Number.isFinite(series) && series > 0 ? plural(series, 'series', 'series') : '',
    ageBand(meta.age),
    meta.sex,
  ].filter(Boolean).join(' · ');
}

function tile(n, index, set = false) {
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
  const f = set ? volumeFacts(meta) : facts(meta);
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
  el.detail.querySelector('#detail-title').textContent = `${Levels[shownLevel].title} #${n.rank ?? index + 1}`;

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
      slice(b.hitThumbnail, `Matching slice of this ${shownLevel === 'LEVEL_INSTANCE' ? 'case' : Levels[shownLevel].noun}`),
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

el.level.value = 'LEVEL_INSTANCE'; // a reload starts at single images, whatever the browser restored
showLevel();
loadCatalog();
