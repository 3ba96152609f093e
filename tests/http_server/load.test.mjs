// Load: 32 simulated writers against one real `inkstream serve` on CPU with
// a fixture model, for a bounded time (INKSTREAM_LOAD_SECONDS, default 60).
// Each writer types its document forward; after every few words it streams
// a suggestion of the text so far (prompts grow by a few tokens: the prefix
// cache's workload), and now and then keeps typing while the suggestion
// streams, which cancels it (the stream is closed mid-way). Asserts zero
// unexpected errors and nothing left running afterwards; prints time to
// first token p50/p99 and the prefix-cache hit rate from /metrics.
// Environment: INKSTREAM_BINARY, INKSTREAM_FIXTURES.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startServe } from '../support/serve_process.mjs';

const binary = process.env.INKSTREAM_BINARY;
const model = `${process.env.INKSTREAM_FIXTURES}/deep-scaled`;  // a 96-token context
const seconds = Number(process.env.INKSTREAM_LOAD_SECONDS ?? 60);
const WRITERS = 32;
let serve;
let retried = 0;  // requests sent again after a stale kept-alive connection
after(() => serve?.child.kill('SIGKILL'));

const words = ('The keeper of the lighthouse climbed the stairs every night and wrote in his log what the sea had done that day. ' +
  'Storms came from the west in autumn; in spring the fog sat on the rocks for weeks, and the ships passed slowly, ' +
  'their horns calling across the water like animals lost in a field. He wrote it all down, and nobody ever read it. ').split(' ');

async function metrics() {
  const t = await (await fetch(`${serve.base}/metrics`)).text();
  const get = (n) => Number(new RegExp(`^inkstream:${n} (\\S+)$`, 'm').exec(t)?.[1] ?? 0);
  return { running: get('num_requests_running'), waiting: get('num_requests_waiting'), queries: get('prefix_cache_queries'), hits: get('prefix_cache_hits') };
}

// One streamed suggestion; `cancelAfterMs` aborts it mid-way (the writer typed on).
async function suggest(prompt, cancelAfterMs) {
  const t0 = performance.now();
  const abort = new AbortController();
  let res;
  // A kept-alive connection the server closed (its idle timeout is 2 s) as
  // this request went out fails before any response: retried once, as the
  // OpenAI SDK and our remote client do. Anything else is an error.
  for (let attempt = 0; !res; attempt++) {
    try {
      res = await fetch(`${serve.base}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny', prompt, max_tokens: 16, temperature: 0.8, stream: true, stream_options: { include_usage: true } }),
        signal: abort.signal,
      });
    } catch (e) {
      const stale = ['UND_ERR_SOCKET', 'ECONNRESET'].includes(e.cause?.code);
      if (!stale || attempt > 0) return { status: 0, error: `${e} (${e.cause?.code ?? ''} ${e.cause?.message ?? e.cause ?? ''})` };
      retried++;
    }
  }
  if (res.status !== 200) return { status: res.status, body: await res.text() };
  let ttft;
  let buf = '';
  let done = false;
  const dec = new TextDecoder();
  try {
    for await (const part of res.body) {
      buf += dec.decode(part, { stream: true });
      if (ttft === undefined && buf.includes('"text":"') && !buf.includes('"text":""')) {
        ttft = performance.now() - t0;
        if (cancelAfterMs !== undefined) setTimeout(() => abort.abort(), cancelAfterMs);
      }
      if (buf.includes('data: [DONE]')) done = true;
    }
  } catch (e) {
    if (e.name !== 'AbortError') return { status: 200, error: String(e) };
    return { status: 200, ttft, cancelled: true };
  }
  if (!done && buf.includes('"error"')) return { status: 200, error: buf.slice(-300) };
  return { status: 200, ttft, done };
}

async function writer(id, end) {
  const out = [];
  let doc = `Writer ${id}'s chapter. `;
  let w = id * 7;
  while (performance.now() < end) {
    for (let k = 0; k < 3 + (w % 3); k++) doc += words[w++ % words.length] + ' ';
    // one in four suggestions is typed over while it streams
    out.push(await suggest(doc, w % 4 === 0 ? 10 : undefined));
    if (doc.length > 240) doc = `Writer ${id}'s next chapter. `;  // (prompt + 16 tokens stay inside the context)
  }
  return out;
}

test(`${WRITERS} writers for ${seconds} s: no unexpected errors, nothing left running`, { timeout: (seconds + 120) * 1000 }, async () => {
  serve = await startServe(binary, ['--model', `tiny=${model}`, '--threads', '1', '--max-running', '32', '--max-queued', '64']);
  const m0 = await metrics();
  const end = performance.now() + seconds * 1000;
  const results = (await Promise.all(Array.from({ length: WRITERS }, (_, i) => writer(i, end)))).flat();
  const m1 = await metrics();
  const errors = results.filter((r) => r.status !== 200 || r.error);
  const ttfts = results.filter((r) => r.ttft !== undefined).map((r) => r.ttft).sort((a, b) => a - b);
  const pct = (p) => ttfts[Math.min(ttfts.length - 1, Math.floor((p / 100) * ttfts.length))];
  const hit = (m1.hits - m0.hits) / Math.max(1, m1.queries - m0.queries);
  console.log(`# ${results.length} requests (${results.filter((r) => r.cancelled).length} cancelled mid-stream, ${results.filter((r) => r.done).length} complete); ` +
    `time to first token p50 ${pct(50).toFixed(0)} ms, p99 ${pct(99).toFixed(0)} ms; prefix cache hit rate ${(100 * hit).toFixed(1)}% of prompt tokens; ${retried} sent again on a fresh connection`);
  assert.deepEqual(errors.slice(0, 3), [], `${errors.length} unexpected errors`);
  assert.ok(results.length >= WRITERS * 2, `every writer got suggestions (${results.length} requests)`);
  assert.ok(hit > 0.5, `prompts that grow by a few words reuse their prefix (${(100 * hit).toFixed(1)}%)`);
  // Nothing left running: closed streams stop at the next step.
  let m = await metrics();
  for (let i = 0; i < 40 && m.running + m.waiting > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    m = await metrics();
  }
  assert.equal(m.running + m.waiting, 0, 'no request left running or waiting');
  assert.equal((await fetch(`${serve.base}/health`)).status, 200);
});
