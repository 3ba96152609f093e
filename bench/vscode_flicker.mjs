// Flicker and first-ghost latency of the VS Code extension's re-render
// methods, in a real VS Code (code-server 4.100.3 + Chromium), one run,
// every method on the same machine minutes apart. For each configuration:
// K suggestions typed in a Markdown file; the ghost text is sampled after
// every paint; an update is a frame that extends what was shown, a flicker a
// frame before the last update that is blank, cut short or missing a line.
//
//   node bench/vscode_flicker.mjs [build/cli/inkstream] [models/default]
// (after `editor_plugins/vscode/scripts/setup_test_env.sh` and `npm run package` there)
import { execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyse } from '../editor_plugins/vscode/test/e2e/flicker.mjs';
import { sleep, Workbench } from '../editor_plugins/vscode/test/e2e/harness.mjs';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const binary = resolve(process.argv[2] ?? join(repo, 'build/cli/inkstream'));
const model = resolve(process.argv[3] ?? join(repo, 'models/default'));
const codeServer = execFileSync(join(repo, 'editor_plugins/vscode/scripts/setup_test_env.sh'), { encoding: 'utf8' }).trim().split('\n').pop();
const K = Number(process.env.K ?? 6);

const workloads = {
  'default (24 tokens, to the sentence end)': {},
  'long (n 16, 230 tokens, ~1.2 s)': { 'inkstream.completion.n': 16, 'inkstream.completion.max_tokens': 230, 'inkstream.completion.stop_at': 'none' },
};
const methods = {
  'hold (shipped)': { 'inkstream.renderMethod': 'hold' },
  'hide+trigger, one sequence': { 'inkstream.renderMethod': 'hideTrigger' },
  'hide, then trigger': { 'inkstream.renderMethod': 'hideThenTrigger' },
  'hide+trigger, not whole words': { 'inkstream.renderMethod': 'hideTrigger', 'inkstream.wholeWords': false },
  'hide+trigger, throttle 0': { 'inkstream.renderMethod': 'hideTrigger', 'inkstream.renderThrottleMs': 0 },
  'hide+trigger, throttle 250': { 'inkstream.renderMethod': 'hideTrigger', 'inkstream.renderThrottleMs': 250 },
};

const wb = new Workbench({ codeServer, vsix: join(repo, 'editor_plugins/vscode/dist/inkstream.vsix'), settings: {} });
wb.writeSettings({ 'inkstream.server.path': binary, 'inkstream.completion.model': model, 'inkstream.completion.threads': 1, 'inkstream.server.args': ['--log-file', wb.serverLog] });
wb.workspaceSettings({});
wb.install();
wb.file('bench.md', '# A story\n\nThe old lighthouse keeper climbed the stairs every night, and');
const rows = [];
try {
  await wb.start();
  await wb.open('bench.md');
  await wb.waitStatus(/inkstream(?!: (starting|loading|error))/);
  for (const [wname, wset] of Object.entries(workloads)) {
    for (const [mname, mset] of Object.entries(methods)) {
      if (wb.workspaceSettings({ ...wset, ...mset })) await sleep(1500);
      const t = { updates: 0, flickers: 0, lat: [], n: 0 };
      for (let i = 0; i < K; i++) {
        await wb.startSampling();
        await wb.page.keyboard.type([' the', ' and', ' then', ' a', ' of', ' it'][i % 6], { delay: 40 });
        const keyAt = await wb.page.evaluate(() => performance.now());
        for (let j = 0; j < 300; j++) {
          if ((await wb.ghost()) && !/writing/.test(await wb.statusText())) break;
          await sleep(50);
        }
        await sleep(300);
        const samples = await wb.samples();
        const a = analyse(samples);
        const first = samples.find((x) => x.text && x.t > keyAt);
        if (first) t.lat.push(first.t - keyAt);
        t.updates += a.updates;
        t.flickers += a.flickers;
        t.n++;
        await wb.page.keyboard.press('Escape');
        await wb.page.keyboard.press('Enter');
      }
      const lat = t.lat.sort((x, y) => x - y);
      rows.push([wname, mname, t.updates, (t.updates / t.n).toFixed(1), t.flickers, `${((100 * t.flickers) / Math.max(1, t.updates)).toFixed(0)}%`, Math.round(lat[lat.length >> 1] ?? NaN)]);
      console.error(rows[rows.length - 1].join(' | '));
    }
  }
} finally {
  await wb.stop();
}
console.log(`\n${K} suggestions per row; first ghost = median ms from the last key to the first painted ghost text (includes the 300 ms idle delay)\n`);
console.log('| workload | re-render | updates | per suggestion | flickered frames | flicker / update | first ghost ms |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
