// Bundles the extension (dist/extension.js) with esbuild; with --tests also
// the unit tests (out/test/unit/*.js, plain Node: they import only the pure
// modules).
import { build } from 'esbuild';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const common = { bundle: true, platform: 'node', target: 'node18', format: 'cjs', sourcemap: true, logLevel: 'warning' };

await build({
  ...common,
  entryPoints: [join(root, 'src/extension.ts')],
  outfile: join(root, 'dist/extension.js'),
  external: ['vscode'],
  minify: true,
});

if (process.argv.includes('--tests')) {
  const dir = join(root, 'test/unit');
  const tests = readdirSync(dir).filter((f) => f.endsWith('.test.ts'));
  await build({
    ...common,
    entryPoints: tests.map((f) => join(dir, f)),
    outdir: join(root, 'out/test/unit'),
  });
}
