// End-to-end tests of the extension in a real VS Code (code-server 4.100.3 =
// VS Code 1.100.3, Chromium, playwright-core) with the real `inkstream lsp`
// and the bundled default model, on loopback. Prints measurements (first
// ghost latency, flicker) and closes with "N passed, N failed".
//
//   INKSTREAM_BINARY=build/cli/inkstream INKSTREAM_MODEL=models/default \
//   CODE_SERVER=<.../node_modules/code-server> node test/e2e/run.mjs [dist/inkstream.vsix]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Workbench, sleep } from './harness.mjs';
import { analyse } from './flicker.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const extDir = resolve(here, '../..');
const repo = resolve(extDir, '../..');
const binary = resolve(process.env.INKSTREAM_BINARY ?? join(repo, 'build/cli/inkstream'));
const model = resolve(process.env.INKSTREAM_MODEL ?? join(repo, 'models/default'));
const codeServer = process.env.CODE_SERVER;
const vsix = resolve(process.argv[2] ?? join(extDir, 'dist/inkstream.vsix'));
const artifacts = resolve(process.env.E2E_ARTIFACTS ?? join(process.env.TMPDIR ?? '/tmp', 'inkstream-vscode-e2e-artifacts'));
const only = process.env.E2E_ONLY ? new RegExp(process.env.E2E_ONLY) : undefined;
for (const [what, p] of [['inkstream binary', binary], ['model', model], ['vsix', vsix], ['code-server', codeServer ?? '']])
  if (!p || !existsSync(p)) {
    console.error(`e2e: ${what} not found: ${p} (editor_plugins/vscode/scripts/setup_test_env.sh sets it up); skipped`);
    process.exit(77);
  }
mkdirSync(artifacts, { recursive: true });

let passed = 0;
let failed = 0;
const check = (cond, what) => {
  if (cond) passed++;
  else {
    failed++;
    console.error(`FAIL: ${what}`);
  }
  return cond;
};
const eq = (got, want, what) => check(got === want, `${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);

// Settings of every scenario: the real server and model, a log to check.
let wb;
const base = () => ({
  'inkstream.server.path': binary,
  'inkstream.server.args': ['--log-file', wb.serverLog, '--log-level', 'debug'],
  'inkstream.completion.model': model,
  'inkstream.completion.threads': 1,
});
// A long suggestion that streams for a while (several re-renders).
const LONG = { 'inkstream.completion.max_tokens': 120, 'inkstream.completion.stop_at': 'none' };

const requests = () => (wb.serverLogText().match(/lsp: completion \S+ requested/g) ?? []).length;
const completions = () => (wb.serverLogText().match(/lsp: completion \S+ (answered|cancelled|failed)/g) ?? []).length;

const save = () => wb.save();

// Opens a file and waits until the extension is ready (the first automatic
// trigger is missed while it still starts).
async function open(name) {
  await wb.open(name);
  await wb.waitStatus(/inkstream(?!: (starting|loading|error))/, 60000);
  await sleep(300);
  await checkServerSettings();
}

// The scenario's server settings (inkstream.completion.*) reach the server:
// its last "settings applied" line holds every one of them.
let pendingServerSettings = [];
async function checkServerSettings() {
  const server = pendingServerSettings;
  pendingServerSettings = [];
  if (!server.length) return;
  // (a removed setting restarts the server: its first line may take a moment)
  const has = (line) => server.every(([k, v]) => line.includes(`"${k.slice(21)}":${JSON.stringify(v)}`));
  let applied = '';
  for (let i = 0; i < 100; i++) {
    applied = (wb.serverLogText().match(/settings applied: (.*)/g) ?? []).pop() ?? '';
    if (has(applied)) break;
    await sleep(100);
  }
  for (const [k, v] of server) check(applied.includes(`"${k.slice(21)}":${JSON.stringify(v)}`), `the server got ${k} = ${JSON.stringify(v)} (${applied})`);
}

// Types `text` into the focused editor, then waits for a finished suggestion
// (status not "writing"; with `untilAnswered`, also the server's log line
// saying it answered), sampling the ghost text after every paint. `early`:
// what the status bar said when it first read as finished while the server
// still worked on it (with `untilAnswered`).
async function suggestion(text, { timeout = 30000, untilAnswered = false } = {}) {
  const answered = untilAnswered ? completions() : 0;
  let early;
  await wb.startSampling();
  const typedAt = Date.now();
  await wb.page.keyboard.type(text, { delay: 40 });
  const lastKey = Date.now();
  const lastKeyPage = await wb.page.evaluate(() => performance.now());
  const end = Date.now() + timeout;
  let status = '';
  while (Date.now() < end) {
    status = await wb.statusText();
    const g = await wb.ghost();
    if (g && !/writing/.test(status)) {
      if (!untilAnswered || completions() > answered) break;
      early ??= JSON.stringify(status);
    }
    await sleep(50);
  }
  await sleep(300);
  const samples = await wb.samples();
  // first ghost paint after the last key (ms)
  const first = samples.find((x) => x.text && x.t > lastKeyPage);
  const latency = first ? Math.round(first.t - lastKeyPage) : undefined;
  return { samples, ghost: await wb.ghost(), status, typedAt, lastKey, latency, early };
}

async function scenario(name, settings, fn) {
  if (only && !only.test(name)) return;
  const before = failed;
  console.log(`--- ${name}`);
  try {
    const log = wb.extensionLog();
    const changes = (log.match(/settings changed/g) ?? []).length;
    // VS Code notices the file; the extension passes it on (or restarts the
    // server). Before the extension has started (no log yet: it starts on
    // the first prose document) there is no one to notice: it reads the
    // settings when it starts (this wait ran out, 5 s, on the first scenario).
    if (wb.workspaceSettings(settings) && log) {
      let i = 0;
      for (; i < 50 && (wb.extensionLog().match(/settings changed/g) ?? []).length === changes; i++) await sleep(100);
      if (i === 50) console.log('the extension log shows no settings change after 5 s');
    }
    await sleep(300);
    // Checked once the scenario's document is open: the extension starts the
    // server on the first prose document, so before that there is no log.
    pendingServerSettings = Object.entries(settings).filter(([k]) => k.startsWith('inkstream.completion.'));
    await fn();
    await checkServerSettings();
  } catch (e) {
    check(false, `${name}: ${e.stack ?? e}`);
  }
  if (failed > before) {
    await wb.screenshot(join(artifacts, `${name.replace(/\W+/g, '_')}.png`));
    // (VS Code writes the extension's log file late: in CI it was still empty here)
    console.error(`  extension log (last lines):\n${wb.extensionLog().trim().split('\n').slice(-16).join('\n')}`);
    console.error(`  server log (last lines):\n${wb.serverLogText().trim().split('\n').slice(-24).join('\n')}`);
  }
  try {
    await wb.page.keyboard.press('Escape');
    await save();
  } catch {}
}

let PROSE = '';
wb = new Workbench({ codeServer, vsix, settings: {} });
const started = Date.now();
try {
  wb.install();
  wb.writeSettings(base());
  wb.workspaceSettings({});
  PROSE = '# A story\n\nThe old lighthouse keeper climbed the stairs every night, and';
  for (const n of ['grow', 'accept', 'word', 'line', 'cycle', 'dismiss', 'through', 'nostream', 'moved', 'trigger', 'crash', 'switch', 'switch2', 'wordstream', 'keys', 'flicker'])
    wb.file(`${n}.md`, PROSE);
  wb.file('notes.txt', 'Notes for the next chapter: the keeper finds a letter, and');
  await wb.start();
  console.log(`workbench up in ${Date.now() - started} ms`);

  // n 16 and 230 tokens: a stream of about a second on this model; re-rendered
  // at every throttle step (the shipped method shows a stream this short in
  // two blank-free steps: the flicker scenarios below measure that one).
  await scenario('ghost text appears and grows in place', { ...LONG, 'inkstream.completion.max_tokens': 230, 'inkstream.completion.n': 16, 'inkstream.renderMethod': 'hideTrigger' }, async () => {
    await open('grow.md');
    const asked = requests();
    // Until the server has answered: twice in CI (never alone here) the
    // status bar read as finished while the stream still ran, with one
    // request and no cancel; the line below says what it read.
    const r = await suggestion(' the', { untilAnswered: true });
    // (a second request would restart the stream: a session ended on the way)
    eq(requests() - asked, 1, 'one request for the whole suggestion');
    const a = analyse(r.samples);
    console.log(`  ${a.snapshots.length} distinct snapshots, first ghost ${r.latency} ms after the last key`);
    if (r.early) console.log(`  the status bar read ${r.early} while the server still streamed`);
    check(a.snapshots.length >= 3, `several growing snapshots (got ${a.snapshots.length}: ${JSON.stringify(a.snapshots)})`);
    eq(a.snapshots[a.snapshots.length - 1], r.ghost, 'the last snapshot is what stays shown');
    // Tab takes it: the document is the text plus the suggestion, and every
    // snapshot shown on the way was a beginning of it.
    await wb.page.keyboard.press('Tab');
    await save();
    const accepted = wb.readFile('grow.md').slice(PROSE.length + ' the'.length);
    eq(accepted, r.ghost, 'after Tab the file holds the final suggestion');
    check(a.snapshots.every((t) => accepted.startsWith(t)), 'every snapshot was a beginning of the final suggestion');
    console.log(`  ${a.flickers} flickered frames over ${a.updates} updates`);
  });

  await scenario('accept all runs the accept command', {}, async () => {
    await open('accept.md');
    const accepts = (wb.serverLogText().match(/suggestion accepted/g) ?? []).length;
    const r = await suggestion(' the');
    check(r.ghost.length > 0, 'a suggestion is shown');
    await wb.page.keyboard.press('Tab');
    await save();
    eq(wb.readFile('accept.md'), `${'# A story\n\nThe old lighthouse keeper climbed the stairs every night, and'} the${r.ghost}`, 'file = text + suggestion');
    await sleep(300);
    eq((wb.serverLogText().match(/suggestion accepted/g) ?? []).length, accepts + 1, 'the server log shows one accept command');
    check((await wb.ghost()) !== r.ghost, 'the accepted suggestion is no longer shown');
  });

  await scenario('accept word takes one word with its space per press', {}, async () => {
    await open('word.md');
    const r = await suggestion(' the');
    check(r.ghost.split(/\s+/).filter(Boolean).length >= 2, `a suggestion of two words or more (${JSON.stringify(r.ghost)})`);
    const first = /^[ \t]*\S+/.exec(r.ghost)?.[0] ?? '';
    await wb.page.keyboard.press('Control+ArrowRight');
    await sleep(400);
    await save();
    eq(wb.readFile('word.md'), `${'# A story\n\nThe old lighthouse keeper climbed the stairs every night, and'} the${first}`, 'one press took the first word and its leading space');
    const rest = await wb.waitGhost((g) => g.length > 0, 5000).catch(() => '');
    eq(rest, r.ghost.slice(first.length), 'the rest stays shown');
  });

  await scenario('accept word while it still streams takes a shown word', { ...LONG, 'inkstream.completion.max_tokens': 230, 'inkstream.completion.n': 16 }, async () => {
    await open('wordstream.md');
    await wb.page.keyboard.type(' the', { delay: 40 });
    // (two words on the first line: not a frame caught mid re-render)
    const g = await wb.waitGhost((x) => /^[ \t]*\S+[ \t]+\S+/.test(x), 20000);
    check(/writing/.test(await wb.statusText()), 'still streaming when Ctrl+Right is pressed');
    await wb.page.keyboard.press('Control+ArrowRight');
    await save();
    const took = wb.readFile('wordstream.md').slice(PROSE.length + ' the'.length);
    eq(took, /^[ \t]*\S+/.exec(g)?.[0], 'one whole shown word with its space');
    const rest = await wb.waitGhost((x) => /^[ \t]*\S/.test(x), 3000).catch(() => '');
    const now = took + rest;
    check(rest.length > 0 && (now.startsWith(g) || g.startsWith(now)), `the rest stays shown (${JSON.stringify(rest.slice(0, 30))})`);
  });

  await scenario('Tab and Ctrl+Right do their usual work with no suggestion', { 'inkstream.autoTrigger': false }, async () => {
    await open('keys.md');
    await wb.page.keyboard.type(' x', { delay: 40 });
    await wb.page.keyboard.press('Tab');
    await save();
    check(/ x(\t| +)$/.test(wb.readFile('keys.md')), `Tab indented (${JSON.stringify(wb.readFile('keys.md').slice(-8))})`);
  });

  await scenario('accept line takes the first line of a multi-line suggestion', { ...LONG }, async () => {
    await open('line.md');
    let r;
    for (const w of [' the', ' of', ' a', ' to']) {
      r = await suggestion(w);
      if (r.ghost.includes('\n') && r.ghost.indexOf('\n') > 0) break;
    }
    check(r.ghost.indexOf('\n') > 0, `a multi-line suggestion (${JSON.stringify(r.ghost)})`);
    await save();
    const before = wb.readFile('line.md');
    const firstLine = r.ghost.slice(0, r.ghost.indexOf('\n'));
    await wb.page.keyboard.press('Control+Alt+ArrowRight');
    await sleep(400);
    await save();
    eq(wb.readFile('line.md'), before + firstLine, 'accept line took the rest of the line');
  });

  await scenario('cycling alternatives', { 'inkstream.completion.n': 3 }, async () => {
    await open('cycle.md');
    const r = await suggestion(' the');
    check(/\(1\/[23]\)/.test(r.status), `the status shows alternative 1 of N (${r.status})`);
    const first = r.ghost;
    await wb.page.keyboard.press('Alt+BracketRight');
    const second = await wb.waitGhost((g) => g && g !== first, 5000).catch(() => first);
    check(second !== first, `Alt+] shows another alternative (${JSON.stringify(first)} -> ${JSON.stringify(second)})`);
    check(/\(2\/[23]\)/.test(await wb.statusText()), `the status shows alternative 2 (${await wb.statusText()})`);
    await wb.page.keyboard.press('Alt+BracketLeft');
    const back = await wb.waitGhost((g) => g === first, 5000).catch(() => '');
    eq(back, first, 'Alt+[ goes back');
    // Tab takes the one shown
    await wb.page.keyboard.press('Alt+BracketRight');
    await wb.waitGhost((g) => g === second, 5000).catch(() => '');
    await wb.page.keyboard.press('Tab');
    await save();
    eq(wb.readFile('cycle.md'), `${'# A story\n\nThe old lighthouse keeper climbed the stairs every night, and'} the${second}`, 'Tab accepted the alternative shown');
  });

  await scenario('dismiss cancels the server request', { 'inkstream.completion.max_tokens': 400, 'inkstream.completion.stop_at': 'none', 'inkstream.completion.n': 16 }, async () => {
    await open('dismiss.md');
    const cancelledBefore = (wb.serverLogText().match(/ cancelled in /g) ?? []).length;
    await wb.page.keyboard.type(' the', { delay: 40 });
    await wb.waitGhost((g) => g.length > 0, 20000);
    check(/writing/.test(await wb.statusText()), 'still streaming when Escape is pressed');
    await wb.page.keyboard.press('Escape');
    await sleep(150);
    eq(await wb.ghost(), '', 'no ghost text after Escape');
    await sleep(1500);
    eq(await wb.ghost(), '', 'and none comes back');
    const cancelledAfter = (wb.serverLogText().match(/ cancelled in /g) ?? []).length;
    check(cancelledAfter > cancelledBefore, 'the server log shows the cancellation');
  });

  await scenario('switching editor cancels a streaming suggestion', { 'inkstream.completion.max_tokens': 400, 'inkstream.completion.stop_at': 'none', 'inkstream.completion.n': 16 }, async () => {
    await open('switch.md');
    const cancelledBefore = (wb.serverLogText().match(/ cancelled in /g) ?? []).length;
    await wb.page.keyboard.type(' the', { delay: 40 });
    await wb.waitGhost((g) => g.length > 0, 20000);
    check(/writing/.test(await wb.statusText()), 'still streaming when the editor changes');
    await wb.open('switch2.md');
    await sleep(1000);
    check((wb.serverLogText().match(/ cancelled in /g) ?? []).length > cancelledBefore, 'the server log shows the cancellation');
    check(/suggestion ended: switched editor/.test(wb.extensionLog()), 'the extension ended it for the switch');
    eq(await wb.ghost(), '', 'no ghost text in the other editor');
  });

  await scenario('typing through keeps the rest without a new request', {}, async () => {
    await open('through.md');
    const r = await suggestion(' the');
    const m = /^\s*\S+/.exec(r.ghost);
    check(!!m && r.ghost.length > m[0].length, `a suggestion longer than a word (${JSON.stringify(r.ghost)})`);
    const n = completions();
    const typed = m[0];
    await wb.page.keyboard.type(typed, { delay: 60 });
    await sleep(800);
    eq(await wb.ghost(), r.ghost.slice(typed.length), 'the rest of the suggestion stays shown');
    eq(completions(), n, 'no new generation');
  });

  await scenario('a server without streaming', { 'inkstream.streaming': false }, async () => {
    await open('nostream.md');
    const r = await suggestion(' the');
    const a = analyse(r.samples);
    check(r.ghost.length > 0, 'a suggestion is shown');
    eq(a.snapshots.length, 1, `it appears once, whole (${JSON.stringify(a.snapshots)})`);
    const last = (wb.serverLogText().match(/lsp: completion \S+ answered .*/g) ?? []).pop() ?? '';
    check(/\b0 streamed updates/.test(last), `the server streamed nothing (${last})`);
  });

  await scenario('plaintext gets suggestions out of the box', {}, async () => {
    await open('notes.txt');
    const r = await suggestion(' she');
    check(r.ghost.length > 0, `ghost text in a .txt file (${JSON.stringify(r.ghost)})`);
    const widget = await wb.page.evaluate(() => !!document.querySelector('.editor-widget.suggest-widget.visible'));
    eq(widget, false, 'no word-suggestion popup over it');
    await wb.page.keyboard.press('Tab');
    await save();
    eq(wb.readFile('notes.txt'), `Notes for the next chapter: the keeper finds a letter, and she${r.ghost}`, 'Tab accepts in plaintext');
  });

  await scenario('moving the cursor drops the suggestion for good', {}, async () => {
    await open('moved.md');
    const r = await suggestion(' the');
    check(r.ghost.length > 0, 'a suggestion is shown');
    await wb.page.keyboard.press('ArrowLeft');
    await sleep(150);
    eq(await wb.ghost(), '', 'no ghost text once the cursor moved');
    await wb.page.keyboard.press('ArrowRight');
    await sleep(1200);
    eq(await wb.ghost(), '', 'the old suggestion does not come back at its old place');
  });

  await scenario('Alt+\\ asks for a suggestion when automatic ones are off', { 'inkstream.autoTrigger': false }, async () => {
    await open('trigger.md');
    const n = completions();
    await wb.page.keyboard.type(' the', { delay: 40 });
    await sleep(1200);
    eq(await wb.ghost(), '', 'no suggestion by itself');
    eq(completions(), n, 'no request by itself');
    await wb.page.keyboard.press('Alt+Backslash');
    const g = await wb.waitGhost((x) => x.length > 0, 15000).catch(() => '');
    check(g.length > 0, 'Alt+\\ brings one');
  });

  await scenario('a crashed server restarts with the next suggestion', {}, async () => {
    await open('crash.md');
    const r = await suggestion(' the');
    check(r.ghost.length > 0, 'a suggestion is shown');
    await wb.page.keyboard.press('Escape');
    const starts = (wb.serverLogText().match(/language server starting/g) ?? []).length;
    spawnSync('pkill', ['-KILL', '-f', wb.serverLog]);
    await wb.waitStatus(/error/, 10000);
    await sleep(500);
    const toasts = await wb.page.evaluate(() =>
      [...document.querySelectorAll('.notification-toast')].filter((t) => t.textContent.includes('the server stopped')).length,
    );
    eq(toasts, 1, 'one message about it');
    const again = await suggestion(' and');
    check(again.ghost.length > 0, `a suggestion after the restart (${JSON.stringify(again.ghost)})`);
    eq((wb.serverLogText().match(/language server starting/g) ?? []).length, starts + 1, 'the server was started again');
    check(/restarting the server after it exited/.test(wb.extensionLog()), 'the extension log says why');
  });

  // Measurements: first-ghost latency and flicker over several suggestions,
  // with the default settings and with long streamed suggestions.
  for (const [label, settings] of [['default settings', {}], ['long suggestions', LONG]]) {
    await scenario(`flicker: ${label}`, settings, async () => {
      await open('flicker.md');
      const totals = { updates: 0, flickers: 0, latencies: [] };
      for (const w of [' the', ' and', ' then', ' a', ' of', ' it']) {
        const r = await suggestion(w);
        const a = analyse(r.samples);
        totals.updates += a.updates;
        totals.flickers += a.flickers;
        if (r.latency !== undefined) totals.latencies.push(r.latency);
        check(a.updates >= 1, `${label}: a suggestion was shown`);
        await wb.page.keyboard.press('Escape');
        await wb.page.keyboard.press('Enter');
      }
      const rate = totals.updates ? totals.flickers / totals.updates : 0;
      const lat = totals.latencies.sort((x, y) => x - y);
      console.log(
        `  flicker (${label}): ${totals.flickers} of ${totals.updates} updates (${(rate * 100).toFixed(1)}%); first ghost after the last key: median ${lat[lat.length >> 1]} ms (${lat.join(', ')}; includes the ${300} ms idle delay)`,
      );
      // The target holds for the product's default settings; longer streams
      // are reported (past the hold they need blank-prone re-renders, and how
      // long a stream lasts depends on this machine's speed).
      if (label === 'default settings') check(rate <= 0.1, `${label}: flicker ${(rate * 100).toFixed(1)}% <= 10%`);
    });
  }
} catch (e) {
  check(false, `e2e: ${e.stack ?? e}`);
  await wb?.screenshot(join(artifacts, 'setup.png'));
} finally {
  await wb?.stop();
}
console.log(`vscode e2e took ${Math.round((Date.now() - started) / 1000)} s`);
console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
