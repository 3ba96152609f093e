// deploy/nginx: both configurations lint with the real nginx, and the plain
// one runs in front of two real `inkstream serve` replicas on loopback:
// chunks pass unbuffered, a replica killed during a stream cuts that stream
// (no [DONE]), the next request is served by the other within a second;
// and an editor (a real `inkstream lsp` pointed at nginx) streams through it,
// sees "stream interrupted" when its replica dies, and is served by the
// other replica at its next suggestion.
// Environment: INKSTREAM_BINARY, NGINX_BINARY (default: nginx on PATH; not
// NGINX, which nginx itself reads as a list of inherited sockets).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { LspProcess } from '../support/lsp_process.mjs';
import { startServe, waitFor } from '../support/serve_process.mjs';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const deploy = resolve(here, '../../deploy/nginx');
const binary = process.env.INKSTREAM_BINARY;
const nginx = process.env.NGINX_BINARY || 'nginx';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const children = [];

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const replica = async () => {
  const r = await startServe(binary, ['--threads', '1']);
  children.push(r.child);
  return r;
};

// Requests a replica holds (generating, or queued in its engine: the first
// step of a request is still counted as waiting).
async function running(port) {
  const t = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const get = (n) => Number(new RegExp(`^inkstream:${n} (\\d+)`, 'm').exec(t)?.[1] ?? 0);
  return get('num_requests_running') + get('num_requests_waiting');
}

// Reads a streamed completion; `onFirst` runs at the first chunk. Returns
// the arrival times of the chunks and whether [DONE] came.
async function stream(base, body, onFirst) {
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ stream: true, ...body }),
  });
  assert.equal(res.status, 200);
  const times = [];
  let text = '';
  let cut = false;
  try {
    for await (const part of res.body) {
      times.push(performance.now());
      text += Buffer.from(part).toString();
      if (times.length === 1 && onFirst) await onFirst();
    }
  } catch {
    cut = true; // the connection broke mid-stream
  }
  return { times, done: text.includes('data: [DONE]'), cut };
}

let a;
let b;
let killed;  // the replica the kill test killed
let base;
let proxy;
before(async () => {
  a = await replica();
  b = await replica();
  const port = await freePort();
  const prefix = mkdtempSync(join(tmpdir(), 'inkstream-nginx-'));
  const conf = readFileSync(join(deploy, 'nginx.conf'), 'utf8')
    .replace('127.0.0.1:8081', `127.0.0.1:${a.port}`)
    .replace('127.0.0.1:8082', `127.0.0.1:${b.port}`)
    .replace('listen 127.0.0.1:8080;', `listen 127.0.0.1:${port};`)
    .replace('worker_processes auto;', 'worker_processes 1;');
  assert.ok(conf.includes(`${a.port}`) && conf.includes(`${b.port}`) && conf.includes(`${port}`), 'the test rewrote the addresses');
  writeFileSync(join(prefix, 'nginx.conf'), conf);
  // (stderr piped to us, not inherited: a worker must not hold the test runner's pipe)
  proxy = spawn(nginx, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', 'stderr', '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  proxy.stderr.on('data', (d) => process.stderr.write(d));
  base = `http://127.0.0.1:${port}`;
  await waitFor(`${base}/health`);
});
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  if (proxy && proxy.exitCode === null) {
    // SIGTERM: the master stops its workers too (SIGKILL would orphan them)
    const gone = new Promise((r) => proxy.on('exit', r));
    proxy.kill('SIGTERM');
    await Promise.race([gone, sleep(5000)]);
  }
});

test('both shipped configurations pass nginx -t', () => {
  const prefix = mkdtempSync(join(tmpdir(), 'inkstream-nginx-lint-'));
  for (const f of ['nginx.conf', 'nginx-session-affinity.conf']) {
    const out = execFileSync(nginx, ['-t', '-p', prefix, '-c', join(deploy, f), '-e', 'stderr'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    void out;
  }
});

test('streamed chunks pass through unbuffered', async () => {
  const r = await stream(base, { model: 'default', prompt: 'The night was long,', max_tokens: 200, n: 8, temperature: 1 });
  assert.ok(r.done, 'the stream ended with [DONE]');
  const total = r.times[r.times.length - 1] - r.times[0];
  const spread = new Set(r.times.map((t) => Math.round(t / 10))).size;
  assert.ok(spread >= 5, `chunks arrived at ${spread} distinct moments (buffered?)`);
  assert.ok(total > 100, `the stream lasted ${total.toFixed(0)} ms from its first chunk: it was not delivered at once`);
});

test('a replica killed during a stream cuts it; the other serves the next request within a second', async () => {
  let killedAt = 0;
  let victimFound = false;
  const r = await stream(base, { model: 'default', prompt: 'A replica will die.', max_tokens: 230, n: 16, temperature: 1 }, async () => {
    const [ra, rb] = [await running(a.port), await running(b.port)];
    const victim = ra > 0 ? a : rb > 0 ? b : undefined;
    if (!victim) return;
    victimFound = true;
    killed = victim;
    victim.child.kill('SIGKILL');
    killedAt = performance.now();
  });
  assert.ok(victimFound, 'one replica held the stream');
  assert.ok(r.cut, 'the client saw the stream break');
  assert.equal(r.done, false, 'the cut stream never claims to be complete');
  assert.ok(performance.now() - killedAt < 2000, 'and saw it at once, not at a timeout');
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'default', prompt: 'Still here?', max_tokens: 4 }),
  });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).choices.length, 1);
  const servedIn = performance.now() - t0;
  console.log(`# the cut was seen ${(t0 - killedAt).toFixed(0)} ms after the kill; the next request took ${servedIn.toFixed(0)} ms`);
  assert.ok(servedIn < 1000, `the other replica served the next request in ${servedIn.toFixed(0)} ms (< 1 s)`);
});

test('an editor streams through nginx, sees "stream interrupted" when its replica dies, and the other serves it next', async () => {
  // The replica killed above comes back on its port; nginx may still count
  // it failed for its fail_timeout (5 s).
  const again = await startServe(binary, ['--threads', '1'], { port: killed.port });
  children.push(again.child);
  if (killed === a) a = again;
  else b = again;
  await sleep(5200);

  const lsp = new LspProcess(binary, ['--log-level', 'debug']);
  try {
    await lsp.initialize({ model: base, streaming: true, n: 16, max_tokens: 230, stop_at: 'none', temperature: 1, stream_interval_ms: 0 });
    const uri = 'file:///chapter.md';
    const text = 'The lighthouse keeper climbed the stairs, and';
    lsp.notify('textDocument/didOpen', { textDocument: { uri, languageId: 'markdown', version: 1, text } });
    const at = { textDocument: { uri }, position: { line: 0, character: text.length }, context: { triggerKind: 1 } };
    const first = lsp.waitFor((n) => n.method === 'inkstream/partialCompletion');
    const answer = lsp.request('textDocument/inlineCompletion', at);
    await first;
    const [ra, rb] = [await running(a.port), await running(b.port)];
    const victim = ra > 0 ? a : rb > 0 ? b : undefined;
    assert.ok(victim, 'one replica held the editor\'s stream');
    victim.child.kill('SIGKILL');
    const killedAt = performance.now();
    const r = await answer;
    assert.ok(r.error, `the request ended in an error: ${JSON.stringify(r)}`);
    assert.match(r.error.message, /stream interrupted/);
    assert.ok(performance.now() - killedAt < 2000, 'at once, not at a timeout');
    const shown = lsp.messages('window/showMessage').map((m) => m.message);
    assert.equal(shown.length, 1, `one message: ${JSON.stringify(shown)}`);
    assert.match(shown[0], /stream interrupted/);

    // The writer types on: the next suggestion comes from the other replica.
    lsp.notify('workspace/didChangeConfiguration', { settings: { n: 1, max_tokens: 8 } });
    lsp.notify('textDocument/didChange', { textDocument: { uri, version: 2 }, contentChanges: [{ text: text + ' the' }] });
    const t0 = performance.now();
    const next = await lsp.request('textDocument/inlineCompletion', { ...at, position: { line: 0, character: text.length + 4 } });
    const ms = performance.now() - t0;
    assert.ok(next.result, `served: ${JSON.stringify(next)}`);
    console.log(`# the editor's next suggestion took ${ms.toFixed(0)} ms after its replica died`);
    assert.ok(ms < 1000, `served in ${ms.toFixed(0)} ms (< 1 s)`);
    await sleep(100);
    const after = lsp.messages('window/showMessage').map((m) => m.message);
    assert.match(after[after.length - 1], /answers again/);
  } finally {
    await lsp.close();
  }
});
