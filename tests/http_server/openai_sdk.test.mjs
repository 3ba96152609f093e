// `inkstream serve` against the official OpenAI SDK (npm `openai` v6), real
// processes and sockets on loopback. Environment: INKSTREAM_BINARY,
// INKSTREAM_FIXTURES (the generated fixture models) and INKSTREAM_DEFAULT_MODEL
// (the bundled model: slow enough for streams that must still run).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { startServe } from '../support/serve_process.mjs';

const binary = process.env.INKSTREAM_BINARY;
const fixtures = process.env.INKSTREAM_FIXTURES;
const bundled = process.env.INKSTREAM_DEFAULT_MODEL;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A replica on one CPU thread (the tests run beside others).
const serve = (args) => startServe(binary, ['--threads', '1', ...args]);

// Exit code of a server already told to stop (a second SIGTERM would force it).
function exited(s) {
  return new Promise((resolve) => {
    if (s.child.exitCode !== null) return resolve(s.child.exitCode);
    s.child.on('exit', (code) => resolve(code));
  });
}

function stop(s) {
  return new Promise((resolve) => {
    if (s.child.exitCode !== null) return resolve(s.child.exitCode);
    s.child.on('exit', (code) => resolve(code));
    s.child.kill('SIGTERM');
  });
}

async function metric(base, name) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = new RegExp(`^inkstream:${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

let open;
let keyed;
before(async () => {
  open = await serve(['--model', `tiny=${fixtures}/tiny`, '--model', `deep=${fixtures}/deep-scaled`, '--model', `default=${bundled}`,
    '--max-running', '2', '--max-queued', '0']);
  keyed = await serve(['--model', `tiny=${fixtures}/tiny`, '--api-key', 'sk-test-one', '--api-key', 'sk-test-two']);
});
after(async () => {
  for (const s of [open, keyed]) if (s) await stop(s);
});

const client = () => new OpenAI({ baseURL: `${open.base}/v1`, apiKey: 'unused', maxRetries: 0 });
const SAMPLING = { temperature: 0.8, top_p: 0.95, top_k: 40, seed: 7 };

test('models and health', async () => {
  const models = await client().models.list();
  assert.deepEqual(models.data.map((m) => m.id).sort(), ['deep', 'default', 'tiny']);
  assert.equal((await fetch(`${open.base}/health`)).status, 200);
  assert.equal((await fetch(`${open.base}/livez`)).status, 200);
});

test('a streamed completion with n = 2: interleaved deltas, one finish per index, usage', async () => {
  const stream = await client().completions.create({
    model: 'tiny', prompt: 'Once upon a time', max_tokens: 12, n: 2, stream: true, stream_options: { include_usage: true }, ...SAMPLING,
  });
  const text = ['', ''];
  const finishes = [0, 0];
  let usage;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text[c.index] += c.text;
      if (c.finish_reason) finishes[c.index]++;
    }
  }
  assert.deepEqual(finishes, [1, 1]);
  assert.ok(text[0].length > 0 && text[1].length > 0);
  assert.ok(usage && usage.prompt_tokens === 4 && usage.completion_tokens > 0 && usage.total_tokens === usage.prompt_tokens + usage.completion_tokens);
  assert.equal(typeof usage.prompt_tokens_details.cached_tokens, 'number');
});

test('the same seed gives the text of `inkstream complete`; streamed and not streamed agree', async () => {
  const cli = JSON.parse(
    execFileSync(binary, ['complete', '--model', `${fixtures}/tiny`, '--prompt', 'The sea was', '--max-tokens', '10', '--n', '2',
      '--temperature', '0.8', '--top-p', '0.95', '--top-k', '40', '--seed', '7', '--repeat-penalty', '1', '--threads', '1', '--json'], { encoding: 'utf8' }),
  );
  const r = await client().completions.create({ model: 'tiny', prompt: 'The sea was', max_tokens: 10, n: 2, ...SAMPLING });
  assert.deepEqual(r.choices.map((c) => c.text), cli.alternatives.map((a) => a.text));
  const stream = await client().completions.create({ model: 'tiny', prompt: 'The sea was', max_tokens: 10, n: 2, stream: true, ...SAMPLING });
  const text = ['', ''];
  for await (const chunk of stream) for (const c of chunk.choices) text[c.index] += c.text;
  assert.deepEqual(text, cli.alternatives.map((a) => a.text));
  assert.equal(r.usage.prompt_tokens, 3);
});

test('token-id prompts and stop strings', async () => {
  const r = await client().completions.create({ model: 'tiny', prompt: [464, 5417, 373], max_tokens: 10, ...SAMPLING });
  const full = r.choices[0].text;
  const byText = await client().completions.create({ model: 'tiny', prompt: 'The sea was', max_tokens: 10, ...SAMPLING });
  assert.equal(full, byText.choices[0].text, 'ids of "The sea was" give its text');
  const word = full.trim().split(/\s+/)[1];
  assert.ok(word, `a second word to stop at in ${JSON.stringify(full)}`);
  const cut = await client().completions.create({ model: 'tiny', prompt: 'The sea was', max_tokens: 10, stop: [word], ...SAMPLING });
  assert.equal(cut.choices[0].text, full.slice(0, full.indexOf(word)));
  assert.equal(cut.choices[0].finish_reason, 'stop');
});

test('bad requests: 400 naming the parameter, 404 for an unknown model', async () => {
  const c = client();
  for (const [body, param] of [
    [{ echo: true }, 'echo'],
    [{ best_of: 3 }, 'best_of'],
    [{ n: 17 }, 'n'],
    [{ temperature: -1 }, 'temperature'],
    [{ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
    [{ max_tokens: 100000 }, 'max_tokens'],
    [{ prompt: [1, 2, 99999999] }, 'prompt'],
  ]) {
    await assert.rejects(
      c.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 4, ...body }),
      (e) => e.status === 400 && e.error?.param === param && e.error?.type === 'invalid_request_error',
      `400 for ${JSON.stringify(body)}`,
    );
  }
  await assert.rejects(c.completions.create({ model: 'nope', prompt: 'x' }), (e) => e.status === 404 && e.code === 'model_not_found');
  const raw = await fetch(`${open.base}/v1/completions`, { method: 'POST', body: '{not json', headers: { 'content-type': 'application/json' } });
  assert.equal(raw.status, 400);
  assert.match((await raw.json()).error.message, /not valid JSON/);
});

test('API keys: 401 without one or with a wrong one, any listed key works, health needs none', async () => {
  const make = (apiKey) => new OpenAI({ baseURL: `${keyed.base}/v1`, apiKey, maxRetries: 0 });
  await assert.rejects(make('sk-wrong').completions.create({ model: 'tiny', prompt: 'x', max_tokens: 2 }), (e) => e.status === 401 && e.code === 'invalid_api_key');
  const raw = await fetch(`${keyed.base}/v1/models`);
  assert.equal(raw.status, 401);
  for (const key of ['sk-test-one', 'sk-test-two']) {
    const r = await make(key).completions.create({ model: 'tiny', prompt: 'x', max_tokens: 2 });
    assert.equal(r.choices.length, 1);
  }
  assert.equal((await fetch(`${keyed.base}/health`)).status, 200);
  assert.doesNotMatch(keyed.log(), /sk-test/, 'keys never logged');
});

test('admission: beyond --max-running with no queue, 429 with Retry-After before any stream', async () => {
  const c = client();
  // two long streams (seconds each on the bundled model) fill both running slots
  const long = () => c.completions.create({ model: 'default', prompt: 'A long night.', max_tokens: 200, n: 16, stream: true, temperature: 1 });
  const a = await long();
  const b = await long();
  const ia = a[Symbol.asyncIterator]();
  const ib = b[Symbol.asyncIterator]();
  await ia.next();
  await ib.next();
  const res = await fetch(`${open.base}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny', prompt: 'x', max_tokens: 2 }),
  });
  assert.equal(res.status, 429);
  assert.equal(res.headers.get('retry-after'), '1');
  assert.match(await (await fetch(`${open.base}/metrics`)).text(), /admission_rejections_total\{reason="queue_full"\} [1-9]/);
  // a client that goes away: its generation stops (counted as aborted), the running gauge drops
  const aborted = (await metric(open.base, 'request_success_total{finished_reason="abort"}')) ?? 0;
  a.controller.abort();
  b.controller.abort();
  let running;
  for (let i = 0; i < 100; i++) {
    running = await metric(open.base, 'num_requests_running');
    if (running === 0) break;
    await sleep(20);
  }
  assert.equal(running, 0, 'disconnected streams stop');
  let nowAborted = 0;
  for (let i = 0; i < 100 && nowAborted < aborted + 2; i++) {
    nowAborted = (await metric(open.base, 'request_success_total{finished_reason="abort"}')) ?? 0;
    await sleep(20);
  }
  assert.equal(nowAborted, aborted + 2, 'both were cut short, not run to their end');
});

test('metrics: vLLM names, token counters, histograms', async () => {
  await client().completions.create({ model: 'tiny', prompt: 'Metrics please', max_tokens: 4 });
  const text = await (await fetch(`${open.base}/metrics`)).text();
  for (const name of ['num_requests_running', 'num_requests_waiting', 'kv_cache_usage_perc', 'prompt_tokens_total', 'generation_tokens_total',
    'prefix_cache_queries', 'prefix_cache_hits'])
    assert.match(text, new RegExp(`^inkstream:${name} \\d`, 'm'), name);
  for (const name of ['time_to_first_token_seconds', 'inter_token_latency_seconds', 'e2e_request_latency_seconds', 'request_queue_time_seconds'])
    assert.match(text, new RegExp(`^inkstream:${name}_count \\d`, 'm'), name);
  assert.ok((await metric(open.base, 'generation_tokens_total')) > 0);
});

test('SIGTERM drains: a running stream finishes, new requests get 503, exit code 0', async () => {
  // (no --model: the bundled model, served as "default"; 100 tokens x 16 run
  // for a second or two, well inside the grace even on a loaded machine)
  const s = await serve(['--drain-grace-ms', '60000']);
  const c = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'x', maxRetries: 0 });
  const stream = await c.completions.create({ model: 'default', prompt: 'Drain me.', max_tokens: 100, n: 16, stream: true, temperature: 1 });
  const it = stream[Symbol.asyncIterator]();
  let finished = 0;
  const count = (chunk) => {
    for (const ch of chunk.choices) if (ch.finish_reason) finished++;
  };
  count((await it.next()).value);
  s.child.kill('SIGTERM');
  let health = 200;
  for (let i = 0; i < 100 && health === 200; i++) {
    health = (await fetch(`${s.base}/health`)).status;
    if (health === 200) await sleep(10);
  }
  assert.equal(health, 503);
  const refused = await fetch(`${s.base}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'default', prompt: 'x', max_tokens: 2 }),
  });
  assert.equal(refused.status, 503);
  for (let r = await it.next(); !r.done; r = await it.next()) count(r.value);
  assert.equal(finished, 16, 'the running stream ran to its end');
  assert.equal(await exited(s), 0);
});

test('a drain whose grace period ends cuts a stream with an error event, not a normal finish', async () => {
  const s = await serve(['--drain-grace-ms', '100']);
  const c = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'x', maxRetries: 0 });
  const stream = await c.completions.create({ model: 'default', prompt: 'Cut me.', max_tokens: 230, n: 16, stream: true, temperature: 1 });
  const it = stream[Symbol.asyncIterator]();
  await it.next();
  s.child.kill('SIGTERM');
  await assert.rejects(
    (async () => {
      for (let r = await it.next(); !r.done; r = await it.next());
    })(),
    (e) => /shutting down/.test(e.message),
  );
  assert.equal(await exited(s), 0);
});
