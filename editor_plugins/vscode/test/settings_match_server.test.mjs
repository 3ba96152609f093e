// The server settings the extension declares (package.json,
// "inkstream.completion.<key>") are the server's own: same keys, same
// defaults. Asks a real `inkstream lsp` (INKSTREAM_BINARY) for its settings
// through the inkstream.status command, over real pipes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = JSON.parse(readFileSync(join(here, '..', 'package.json'), 'utf8'));
const binary = process.env.INKSTREAM_BINARY;

function lsp(bin) {
  const child = spawn(bin, ['lsp'], { stdio: ['pipe', 'pipe', 'ignore'] });
  let buf = Buffer.alloc(0);
  const waiting = new Map();
  child.stdout.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const len = Number(/Content-Length: (\d+)/i.exec(buf.slice(0, end).toString())[1]);
      if (buf.length < end + 4 + len) return;
      const msg = JSON.parse(buf.slice(end + 4, end + 4 + len).toString());
      buf = buf.slice(end + 4 + len);
      if (msg.id !== undefined && waiting.has(msg.id)) waiting.get(msg.id)(msg);
    }
  });
  let id = 0;
  const send = (m) => {
    const body = JSON.stringify({ jsonrpc: '2.0', ...m });
    child.stdin.write(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  };
  return {
    request: (method, params) =>
      new Promise((resolve, reject) => {
        const my = ++id;
        const timer = setTimeout(() => reject(new Error(`${method}: no answer`)), 20000);
        waiting.set(my, (m) => {
          clearTimeout(timer);
          resolve(m);
        });
        send({ id: my, method, params });
      }),
    notify: (method, params) => send({ method, params }),
    close: () => {
      send({ id: 999, method: 'shutdown' });
      send({ method: 'exit' });
      child.stdin.end();
    },
  };
}

test('package.json declares exactly the server settings, with its defaults', { skip: !binary && 'INKSTREAM_BINARY not set' }, async () => {
  const s = lsp(binary);
  await s.request('initialize', { capabilities: {}, processId: null, rootUri: null });
  s.notify('initialized', {});
  const status = await s.request('workspace/executeCommand', { command: 'inkstream.status', arguments: [] });
  s.close();
  const server = status.result.settings;
  const declared = Object.fromEntries(
    Object.entries(pkg.contributes.configuration.properties)
      .filter(([k]) => k.startsWith('inkstream.completion.'))
      .map(([k, v]) => [k.slice('inkstream.completion.'.length), v]),
  );
  const serverKeys = Object.keys(server).filter((k) => k !== 'streaming').sort();
  assert.deepEqual(Object.keys(declared).sort(), serverKeys, 'the same keys');
  for (const [key, decl] of Object.entries(declared)) {
    if (key === 'model' || key === 'models_dir') continue; // "" = the server's own choice
    assert.deepEqual(decl.default, server[key], `default of ${key}`);
  }
});
