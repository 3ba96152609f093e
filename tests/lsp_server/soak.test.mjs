// Soak: the real `inkstream lsp` over pipes for a bounded time
// (INKSTREAM_SOAK_SECONDS, default 60) as a hostile editor would drive it —
// many documents, random incremental utf-16 edits with astral characters
// and hostile ranges (past line ends, inside surrogate pairs, reversed, past
// the last line), completions cancelled at random or overtaken by typing,
// configuration churn with invalid and out-of-range values. Asserts: every
// request answered, every document equal to a reference copy kept here,
// every rejected setting reported with the previous value kept, memory
// bounded. Environment: INKSTREAM_BINARY, INKSTREAM_MODEL.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { LspProcess } from '../support/lsp_process.mjs';

const binary = process.env.INKSTREAM_BINARY;
const model = process.env.INKSTREAM_MODEL;
const seconds = Number(process.env.INKSTREAM_SOAK_SECONDS ?? 60);
const DOCS = 30;

// A seeded generator: a failure can be replayed.
let seed = Number(process.env.INKSTREAM_SOAK_SEED ?? 20261201);
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const int = (n) => Math.floor(rand() * n);

const PIECES = ['the ', 'keeper ', '\u00e9t\u00e9 ', '\u{1F600}', '\u{1F30A} sea', '\n', '\r\n', '\r', '. ', ', and ', '\u65e5\u672c ', '\t', ''];

// The reference copy: LSP's rules on a JavaScript (utf-16) string. Lines end
// at \n, \r\n or a lone \r; a character past its line's end means the line's
// end; inside a surrogate pair, the start of that character; a line that
// does not exist, or a range whose start is after its end, makes the server
// refuse the whole notification (the document stays as it was).
function lineStarts(text) {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\n' || (text[i] === '\r' && text[i + 1] !== '\n')) starts.push(i + 1);
  }
  return starts;
}
function offsetOf(text, { line, character }) {
  const starts = lineStarts(text);
  if (line >= starts.length) return undefined;
  let end = line + 1 < starts.length ? starts[line + 1] : text.length;
  // the line's content ends before its line break
  if (end > starts[line] && text[end - 1] === '\n') end--;
  if (end > starts[line] && text[end - 1] === '\r') end--;
  let off = Math.min(starts[line] + character, end);
  const c = text.charCodeAt(off);
  if (off > starts[line] && off < end && c >= 0xdc00 && c <= 0xdfff) off--;  // inside a surrogate pair
  return off;
}
function applyChanges(text, changes) {
  let t = text;
  for (const ch of changes) {
    if (!ch.range) {
      t = ch.text;
      continue;
    }
    const a = offsetOf(t, ch.range.start);
    const b = offsetOf(t, ch.range.end);
    if (a === undefined || b === undefined || a > b) return text;  // refused whole
    t = t.slice(0, a) + ch.text + t.slice(b);
  }
  return t;
}

function randomPosition(text) {
  const starts = lineStarts(text);
  const r = rand();
  if (r < 0.03) return { line: starts.length + int(3), character: 0 };  // past the last line
  const line = int(starts.length);
  const lineLen = (line + 1 < starts.length ? starts[line + 1] : text.length) - starts[line];
  if (r < 0.08) return { line, character: lineLen + 5 + int(1000) };  // past the line's end
  return { line, character: int(lineLen + 1) };  // sometimes inside a surrogate pair
}

function randomEdit(text) {
  if (rand() < 0.02) return [{ text: Array.from({ length: 5 }, () => pick(PIECES)).join('') }];  // full replacement
  const changes = [];
  let t = text;
  for (let k = 1 + int(2); k > 0; k--) {
    let start = randomPosition(t);
    let end = rand() < 0.5 ? start : randomPosition(t);
    const so = offsetOf(t, start), eo = offsetOf(t, end);
    if (so !== undefined && eo !== undefined && so > eo && rand() < 0.8) [start, end] = [end, start];  // mostly ordered; some reversed
    const inserted = Array.from({ length: int(4) }, () => pick(PIECES)).join('');
    changes.push({ range: { start, end }, text: inserted });
    t = applyChanges(t, [changes[changes.length - 1]]);
  }
  return changes;
}

const VALID = [{ n: 1 }, { n: 2 }, { n: 3 }, { max_tokens: 4 }, { max_tokens: 8 }, { temperature: 0.5 }, { temperature: 1.0 },
  { stop_at: 'word' }, { stop_at: 'none' }, { seed: 7 }, { stream_interval_ms: 0 },
  // each of these needs another loaded copy or engine: the LRU of loaded models must keep memory bounded
  { dtype: 'fp32' }, { dtype: 'int8' }, { dtype: 'bf16' }, { threads: 1 }, { threads: 2 }, { kv_cache_mb: 64 }, { kv_cache_mb: 128 }];
const INVALID = [[{ n: 4294967297 }, 'n'], [{ max_tokens: -4294967295 }, 'max_tokens'], [{ top_k: 4294967296 }, 'top_k'],
  [{ seed: -1 }, 'seed'], [{ threads: 4294967297 }, 'threads'], [{ repeat_last_n: 4294967295 }, 'repeat_last_n'],
  [{ stop_at: 'chapter' }, 'stop_at'], [{ temperature: 'hot' }, 'temperature'], [{ colour: 'blue' }, 'colour'],
  [{ remotes: { x: { url: 'ftp://h' } } }, 'remotes'], [{ kv_cache_mb: 0 }, 'kv_cache_mb']];

function rssMb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}
const threadCount = (pid) => Number(/Threads:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

test(`soak: ${DOCS} documents, hostile edits, cancels and settings churn for ${seconds} s`, { timeout: (seconds + 120) * 1000 }, async () => {
  const lsp = new LspProcess(binary, ['--model', model, '--threads', '1']);
  try {
    await lsp.initialize({ streaming: true, n: 2, max_tokens: 8, stop_at: 'none', stream_interval_ms: 0 });
    const docs = [];
    for (let i = 0; i < DOCS; i++) {
      const uri = `file:///soak/doc${i}.md`;
      const text = `Document ${i}: the keeper \u{1F600} wrote.\r\nSecond line\rthird\n`;
      docs.push({ uri, text, version: 1 });
      lsp.notify('textDocument/didOpen', { textDocument: { uri, languageId: 'markdown', version: 1, text } });
    }
    const warm = await lsp.request('textDocument/inlineCompletion', { textDocument: { uri: docs[0].uri }, position: { line: 0, character: 3 }, context: { triggerKind: 1 } });
    assert.ok(warm.result || warm.error);
    const rss0 = rssMb(lsp.child.pid);
    const threads0 = threadCount(lsp.child.pid);

    const pending = new Set();
    let requests = 0, answered = 0, edits = 0, churns = 0, rejected = 0, cancels = 0;
    let settings = (await lsp.request('workspace/executeCommand', { command: 'inkstream.status' })).result.settings;
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
      const r = rand();
      const d = pick(docs);
      if (r < 0.6) {
        const changes = randomEdit(d.text);
        d.text = applyChanges(d.text, changes);
        d.version++;
        lsp.notify('textDocument/didChange', { textDocument: { uri: d.uri, version: d.version }, contentChanges: changes });
        edits++;
      } else if (r < 0.9) {
        const p = lsp.request('textDocument/inlineCompletion', { textDocument: { uri: d.uri }, position: randomPosition(d.text), context: { triggerKind: 1 } }, 30000)
          .then((m) => {
            assert.ok(m.result !== undefined || m.error, `an answer: ${JSON.stringify(m)}`);
            answered++;
          });
        pending.add(p);
        p.finally(() => pending.delete(p));
        requests++;
        if (rand() < 0.3) {
          lsp.notify('$/cancelRequest', { id: lsp.nextId - 1 });
          cancels++;
        }
      } else if (r < 0.95) {
        // settings churn: a valid change, or an invalid one that must be reported and change nothing
        const before = lsp.messages('window/showMessage').length;
        if (rand() < 0.5) {
          const v = pick(VALID);
          lsp.notify('workspace/didChangeConfiguration', { settings: { inkstream: v } });
        } else {
          const [v, key] = pick(INVALID);
          lsp.notify('workspace/didChangeConfiguration', { settings: { inkstream: v } });
          const msg = await lsp.waitFor((n) => n.method === 'window/showMessage' && new RegExp(`\\b${key}[.:]`).test(n.params.message), 10000)
            .catch(() => undefined);
          assert.ok(msg, `the rejected ${key} was reported (${lsp.messages('window/showMessage').length - before} new messages)`);
          rejected++;
        }
        const now = (await lsp.request('workspace/executeCommand', { command: 'inkstream.status' })).result.settings;
        for (const [k, v] of Object.entries(now)) {
          if (k === 'remotes') continue;
          const changed = JSON.stringify(v) !== JSON.stringify(settings[k]);
          if (changed) assert.ok(VALID.some((x) => k in x && JSON.stringify(x[k]) === JSON.stringify(v)), `${k} changed to ${JSON.stringify(v)} only by a valid setting`);
        }
        settings = now;
        churns++;
      } else {
        await new Promise((res) => setTimeout(res, int(30)));  // a pause, as writers make
      }
      if (pending.size > 16) await Promise.race(pending);
      if (int(20) === 0) await new Promise((res) => setImmediate(res));
    }
    await Promise.all(pending);
    assert.equal(answered, requests, 'every request was answered');

    // Every document equals its reference copy.
    let differing = 0;
    for (const d of docs) {
      const r = await lsp.request('workspace/executeCommand', { command: 'inkstream.documentText', arguments: [d.uri] });
      if (r.result.text !== d.text) {
        differing++;
        if (differing === 1) console.log(`# first differing: ${d.uri}\n# server:    ${JSON.stringify(r.result.text)}\n# reference: ${JSON.stringify(d.text)}`);
      }
    }
    const rss1 = rssMb(lsp.child.pid);
    // Models still loading when the last request ended finish loading; then
    // the idle ones beyond max_loaded_models go (after any message).
    let loaded = [];
    for (let i = 0; i < 40; i++) {
      loaded = (await lsp.request('workspace/executeCommand', { command: 'inkstream.status' })).result.models;
      if (loaded.length <= 2) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const threads1 = threadCount(lsp.child.pid);
    console.log(`# loaded at the end: ${loaded.length} (${loaded.map((m) => m.model + ' busy ' + m.busy).join(', ')}); ` +
      `threads ${threads0} -> ${threads1}`);
    console.log(`# ${edits} edits, ${requests} completions (${cancels} cancelled), ${churns} settings changes (${rejected} rejected); ` +
      `${differing} documents differing; RSS ${rss0.toFixed(0)} -> ${rss1.toFixed(0)} MB`);
    assert.equal(differing, 0, 'every document equals the reference copy');
    // About a thousand model loads a minute (every dtype and kv_cache_mb
    // change loads another copy; two stay loaded): what remains is the
    // allocator's retained free memory, which levels off (183 -> 331 MB at
    // 20 s, 378 at 60 s here; without handing it back after unloads it was
    // 557 at 30 s and still climbing).
    assert.ok(loaded.length <= 2, `at most max_loaded_models stay loaded once idle: ${loaded.length}`);
    assert.ok(rss1 < rss0 + 300, `memory stays bounded (${rss0.toFixed(0)} -> ${rss1.toFixed(0)} MB)`);
    // Each unloaded model's threads end with it (they once stayed: 3 -> 5
    // threads in two minutes of changes; here ~1,000 reloads would leave
    // hundreds). At the start one model was loaded; at the end two may be,
    // each with its runners and OpenMP team (21 -> 36-37 here).
    assert.ok(threads1 <= 2 * threads0, `threads stay bounded (${threads0} -> ${threads1})`);
  } finally {
    await lsp.close();
  }
});
