// The server settings the extension declares (package.json,
// "inkstream.completion.<key>") are the server's own: same keys, same
// defaults. Asks a real `inkstream lsp` (INKSTREAM_BINARY) for its settings
// through the inkstream.status command, over real pipes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LspProcess } from '../../../tests/support/lsp_process.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = JSON.parse(readFileSync(join(here, '..', 'package.json'), 'utf8'));
const binary = process.env.INKSTREAM_BINARY;

test('package.json declares exactly the server settings, with its defaults', { skip: !binary && 'INKSTREAM_BINARY not set' }, async () => {
  const s = new LspProcess(binary);
  await s.initialize();
  const status = await s.request('workspace/executeCommand', { command: 'inkstream.status', arguments: [] }, 20000);
  await s.close();
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
