// `inkstream serve` under simulated writers: each writer types a document
// forward and, after every few words, streams a suggestion of the prompt so
// far (the request a remote editor sends), so prompts grow by a few tokens
// each time. Measures aggregate generated tokens/s and time to first token
// at 1, 4 and 16 concurrent writers, and the prefix-cache hit rate from
// /metrics. One server, one run; bounded (a fixed number of requests).
//
// Writers that all start at the same instant stay in step: each request
// takes the same number of tokens, so they all finish, and ask again,
// together, and the last of 16 simultaneous newcomers waits for all their
// prompts (a burst); and writers read together stay together. Writers who
// type at their own pace do not: a last row has the 16 writers start at
// seeded random moments within --spread-ms and pause up to --pause-ms
// (seeded, uniform) between a suggestion and their next request, the same
// work otherwise (the same documents as the row before: their first
// prompts are cached, like a writer's who has been at work a while).
//
//   node bench/serve_bench.mjs BINARY MODEL_DIR [--dtype auto] [--requests 8] [--max-tokens 24]
//                              [--spread-ms 1000] [--pause-ms 200] [--serve-args "--log-level trace --log-file F"]
//                              [--openai-defaults]
// (--openai-defaults: requests name no temperature, top_p or top_k, as the
// OpenAI SDK's do unless told: temperature 1, top_p 1, no top-k; otherwise
// the editor's 0.8, 0.95 and 40.)
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServe } from '../tests/support/serve_process.mjs';

const [binary, model] = process.argv.slice(2);
const opt = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const dtype = opt('dtype', 'auto');
const perWriter = Number(opt('requests', 8));
const maxTokens = Number(opt('max-tokens', 24));
const spreadMs = Number(opt('spread-ms', 1000));
const pauseMs = Number(opt('pause-ms', 200));
const openaiDefaults = process.argv.includes('--openai-defaults');
const sampling = openaiDefaults ? {} : { temperature: 0.8, top_p: 0.95, top_k: 40 };
const serveArgs = opt('serve-args', '').split(' ').filter(Boolean); // e.g. the engine's per-step trace
const here = dirname(fileURLToPath(import.meta.url));
// Documents: the repository's own prose (several thousand words), each writer at its own place.
const text = ['README.md', 'docs/protocol.md', 'docs/serve.md'].map((f) => readFileSync(join(here, '..', f), 'utf8')).join(' ');
const words = text.replace(/[`|#*]/g, '').replace(/\s+/g, ' ').split(' ');

const { child, base } = await startServe(binary, ['--model', `m=${model}`, '--dtype', dtype, '--max-running', '32', '--max-queued', '64', ...serveArgs]);

async function metrics() {
  const t = await (await fetch(`${base}/metrics`)).text();
  const get = (n) => Number(new RegExp(`^inkstream:${n} (\\S+)$`, 'm').exec(t)?.[1] ?? 0);
  return { queries: get('prefix_cache_queries'), hits: get('prefix_cache_hits') };
}

// One streamed request; resolves {ttft, tokens, ms}.
async function suggest(prompt) {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', prompt, max_tokens: maxTokens, ...sampling, stream: true, stream_options: { include_usage: true } }),
  });
  let ttft;
  let tokens = 0;
  let buf = '';
  const dec = new TextDecoder();
  for await (const part of res.body) {
    buf += dec.decode(part, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 2);
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const ev = JSON.parse(line.slice(6));
      if (ev.usage) tokens = ev.usage.completion_tokens;
      else if (ttft === undefined && ev.choices?.[0]?.text) ttft = performance.now() - t0;
    }
  }
  return { ttft: ttft ?? performance.now() - t0, tokens, ms: performance.now() - t0 };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// A seeded generator (mulberry32): the same start moments in every run.
function random(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// `startMs`: when the writer starts; `pause()`: ms between a suggestion and
// the next request.
async function writer(id, startMs = 0, pause = () => 0) {
  if (startMs > 0) await sleep(startMs);
  const out = [];
  const doc = words.slice((id * 211) % (words.length - 400)).join(' ');
  let len = 0;
  for (let r = 0; r < perWriter; r++) {
    const wait = r > 0 ? pause() : 0;
    if (wait > 0) await sleep(wait);
    len += 4 + (r % 3); // a few words typed since the last suggestion
    out.push({ ...(await suggest(`Writer ${id}: ` + doc.split(' ').slice(0, 60 + len).join(' '))), first: r === 0 });
  }
  return out;
}

const pct = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const rows = [];
await suggest('Warm up.');
const runs = [{ writers: 1 }, { writers: 4 }, { writers: 16 }, { writers: 16, spread: true }];
for (const { writers, spread } of runs) {
  const m0 = await metrics();
  const t0 = performance.now();
  const next = random(2026);
  const starts = Array.from({ length: writers }, () => (spread ? next() * spreadMs : 0));
  const all = (await Promise.all(starts.map((ms, i) => {
    const own = random(1000 + i); // each writer's pauses: a stream of its own
    return writer(i, ms, spread ? () => own() * pauseMs : () => 0);
  }))).flat();
  const secs = (performance.now() - t0) / 1000;
  const m1 = await metrics();
  const tokens = all.reduce((s, x) => s + x.tokens, 0);
  const ttfts = all.map((x) => x.ttft);
  // Steady state: without each writer's first request (all writers start at
  // the same instant, so their first, uncached prompts queue behind each other).
  const warm = all.filter((x) => !x.first).map((x) => x.ttft);
  rows.push({ writers: spread ? `${writers} at their own pace (starts within ${spreadMs} ms, pauses up to ${pauseMs} ms)` : writers, requests: all.length, tps: tokens / secs, p50: pct(ttfts, 50), p99: pct(ttfts, 99), wp50: pct(warm, 50), wp99: pct(warm, 99),
    hit: (m1.hits - m0.hits) / Math.max(1, m1.queries - m0.queries) });
}
child.kill('SIGTERM');
console.log(`model ${model}, --dtype ${dtype}, ${perWriter} requests per writer, max_tokens ${maxTokens}, streamed, ${openaiDefaults ? "OpenAI's default sampling" : 'temperature 0.8, top_p 0.95, top_k 40'}\n`);
console.log('| writers | requests | aggregate tokens/s | TTFT p50 ms | TTFT p99 ms | without first requests: p50 | p99 | prefix hit rate |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows)
  console.log(`| ${r.writers} | ${r.requests} | ${r.tps.toFixed(0)} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${r.wp50.toFixed(0)} | ${r.wp99.toFixed(0)} | ${(r.hit * 100).toFixed(0)}% |`);
console.log(`\n16 vs 1 writer: ${(rows[2].tps / rows[0].tps).toFixed(2)}x tokens/s; TTFT p99 at 16 = ${(rows[2].p99 / rows[0].p50).toFixed(2)}x the idle p50, ` +
  `${(rows[2].wp99 / rows[0].wp50).toFixed(2)}x without first requests; at their own pace (whose tokens/s counts their pauses too): ` +
  `TTFT p99 ${(rows[3].p99 / rows[0].p50).toFixed(2)}x the idle p50`);
