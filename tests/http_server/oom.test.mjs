// Out of memory on a real request, not an injected allocator failure: a
// running `inkstream serve` and a running `inkstream lsp` each get an
// address-space limit (prlimit, set just above what they use once warm),
// then requests whose KV cache cannot fit. Each fails with an error that
// says it ran out of memory; the server stays up and serves the next
// request. The model is written here: 32 narrow layers make one request's
// cache large (32 KB per token and row: 16 rows x 512 tokens = 268 MB) while
// the weights stay small (52 MB).
// Environment: INKSTREAM_BINARY, INKSTREAM_DEFAULT_MODEL (for its tokenizer files).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { LspProcess } from '../support/lsp_process.mjs';
import { startServe } from '../support/serve_process.mjs';

const binary = process.env.INKSTREAM_BINARY;
const bundled = process.env.INKSTREAM_DEFAULT_MODEL;
const MB = 1 << 20;

// A GPT-2 checkpoint with random weights (fixed seed) in HF's names and layout.
function writeModel(dir, { n_layer, n_head, n_embd, n_positions }) {
  const V = 50257, C = n_embd;
  const shapes = [['wte.weight', [V, C]], ['wpe.weight', [n_positions, C]]];
  for (let i = 0; i < n_layer; ++i) {
    const p = `h.${i}.`;
    shapes.push([p + 'ln_1.weight', [C]], [p + 'ln_1.bias', [C]], [p + 'attn.c_attn.weight', [C, 3 * C]], [p + 'attn.c_attn.bias', [3 * C]],
      [p + 'attn.c_proj.weight', [C, C]], [p + 'attn.c_proj.bias', [C]], [p + 'ln_2.weight', [C]], [p + 'ln_2.bias', [C]],
      [p + 'mlp.c_fc.weight', [C, 4 * C]], [p + 'mlp.c_fc.bias', [4 * C]], [p + 'mlp.c_proj.weight', [4 * C, C]], [p + 'mlp.c_proj.bias', [C]]);
  }
  shapes.push(['ln_f.weight', [C]], ['ln_f.bias', [C]]);
  const header = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, shape] of shapes) {
    const bytes = 4 * shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const data = new Float32Array(offset / 4);
  let s = 0x9e3779b9;
  const uniform = () => ((s = (s ^ (s << 13)) >>> 0), (s = (s ^ (s >>> 17)) >>> 0), (s = (s ^ (s << 5)) >>> 0), s / 2 ** 32 - 0.5);
  let at = 0;
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const isScale = /ln_\d\.weight|ln_f\.weight/.test(name);
    for (let i = 0; i < n; ++i) data[at + i] = isScale ? 1 : 0.04 * uniform();
    at += n;
  }
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'model.safetensors'), Buffer.concat([length, Buffer.from(json), Buffer.from(data.buffer)]));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
    model_type: 'gpt2', vocab_size: V, n_layer, n_head, n_embd, n_positions, n_ctx: n_positions, layer_norm_epsilon: 1e-5,
    activation_function: 'gelu_new', tie_word_embeddings: true,
  }));
  for (const f of ['vocab.json', 'merges.txt']) fs.copyFileSync(path.join(bundled, f), path.join(dir, f));
}

const vmSizeBytes = (pid) => 1024 * Number(/VmSize:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

async function complete(base, body) {
  const r = await fetch(`${base}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'long', ...body }),
  });
  return { status: r.status, text: await r.text() };
}

// Limits the address space of a warm process to what it uses now + `room`.
function limitAddressSpace(name, pid, room) {
  const warm = vmSizeBytes(pid);
  const limit = warm + room;
  execFileSync('prlimit', ['--pid', String(pid), `--as=${limit}:${limit}`]);
  console.log(`${name}: VmSize ${(warm / MB).toFixed(0)} MB once warm, address space limited to ${(limit / MB).toFixed(0)} MB`);
}
const ROOM = 160 * MB;  // enough for small requests, not for a big one's cache

let dir;
let model;
let server;
before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inkstream-oom-'));
  model = path.join(dir, 'long');
  // fp32 keys and values: 32 layers x 128 x 4 bytes x 2 = 32 KB per token and row
  writeModel(model, { n_layer: 32, n_head: 4, n_embd: 128, n_positions: 1024 });
  server = await startServe(binary, ['--model', `long=${model}`, '--dtype', 'fp32', '--threads', '1', '--kv-cache-mb', '4096']);
});
after(() => {
  server?.child.kill('SIGKILL');
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('a request that cannot get its memory fails with an out-of-memory error and the next one is served', async () => {
  const small = { prompt: 'The quick brown fox', max_tokens: 8, temperature: 0, seed: 1 };
  // Warm: every path a small request takes has run (threads, arenas, buffers).
  for (const n of [1, 4, 16]) assert.equal((await complete(server.base, { ...small, n })).status, 200);
  const expected = await complete(server.base, small);
  assert.equal(expected.status, 200);

  limitAddressSpace('serve', server.child.pid, ROOM);

  const big = { prompt: 'Once upon a time', n: 16, max_tokens: 1000, temperature: 0.8, seed: 3 };  // 524 MB of cache
  for (let round = 0; round < 3; ++round) {
    const plain = await complete(server.base, big);
    console.log(`round ${round}: big request -> ${plain.status} ${plain.text.slice(0, 300)}`);
    assert.equal(plain.status, 500, plain.text);
    const error = JSON.parse(plain.text).error;
    assert.match(error.message, /out of memory/i, error.message);
    assert.match(error.message, /lower n or max_tokens/, error.message);
    assert.equal(error.code, 'out_of_memory');

    const streamed = await complete(server.base, { ...big, stream: true });
    assert.equal(streamed.status, 200);  // (the stream had begun: its error comes as an event)
    assert.match(streamed.text, /"error":\{[^}]*out of memory/i, streamed.text.slice(0, 500));

    // The next request is served, with the same text as before the failures.
    const next = await complete(server.base, small);
    assert.equal(next.status, 200, next.text);
    assert.equal(JSON.parse(next.text).choices[0].text, JSON.parse(expected.text).choices[0].text);
  }
  assert.equal((await fetch(`${server.base}/health`)).status, 200);
  assert.equal(server.child.exitCode, null, server.log());
});

test('the language server answers a completion that cannot get its memory with an out-of-memory error, and the next one', async () => {
  const lsp = new LspProcess(binary, []);
  try {
    const small = { n: 1, max_tokens: 8, temperature: 0, stop_at: 'none' };
    await lsp.initialize({ model, dtype: 'fp32', threads: 1, kv_cache_mb: 4096, streaming: false, ...small });
    const uri = 'file:///story.md';
    const text = 'The quick brown fox';
    lsp.notify('textDocument/didOpen', { textDocument: { uri, languageId: 'markdown', version: 1, text } });
    const at = { textDocument: { uri }, position: { line: 0, character: text.length }, context: { triggerKind: 1 } };
    const settings = (s) => lsp.notify('workspace/didChangeConfiguration', { settings: s });
    for (const n of [16, 4, 1]) {
      settings({ n });
      const r = await lsp.request('textDocument/inlineCompletion', at);
      assert.ok(r.result, JSON.stringify(r));
    }
    const expected = await lsp.request('textDocument/inlineCompletion', at);
    assert.ok(expected.result?.items?.length, JSON.stringify(expected));

    limitAddressSpace('lsp', lsp.child.pid, ROOM);
    for (let round = 0; round < 3; ++round) {
      settings({ n: 16, max_tokens: 512, temperature: 0.8 });  // 268 MB of cache
      const big = await lsp.request('textDocument/inlineCompletion', at);
      assert.ok(big.error, `failed: ${JSON.stringify(big).slice(0, 300)}`);
      assert.match(big.error.message, /out of memory/i, big.error.message);
      settings(small);
      const next = await lsp.request('textDocument/inlineCompletion', at);
      const texts = (r) => r.result?.items?.map((i) => i.insertText);
      assert.deepEqual(texts(next), texts(expected), JSON.stringify(next).slice(0, 300));
    }
    const shown = lsp.messages('window/showMessage').map((m) => m.message);
    assert.ok(shown.some((m) => /out of memory/i.test(m)), `told the writer: ${JSON.stringify(shown)}`);
    assert.equal(lsp.child.exitCode, null, lsp.stderr);
  } finally {
    await lsp.close();
  }
});
