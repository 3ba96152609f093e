// A real VS Code for the end-to-end tests: code-server (VS Code 1.100.3) on
// loopback, driven through Debian's Chromium by playwright-core, with the
// packaged extension installed and the real `inkstream lsp` behind it.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function findChromium() {
  for (const p of [process.env.CHROMIUM, '/usr/lib/chromium/chromium-headless-shell', '/usr/bin/chromium-headless-shell', '/usr/bin/chromium'])
    if (p && existsSync(p)) return p;
  throw new Error('no Chromium found (apt-get install chromium-headless-shell, or set CHROMIUM)');
}

// Quiet workbench settings (no welcome page, trust prompt, updates), plus the test's own.
export function userSettings(extra) {
  return {
    'workbench.startupEditor': 'none',
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    'workbench.tips.enabled': false,
    'security.workspace.trust.enabled': false,
    'update.mode': 'none',
    'files.hotExit': 'off',
    'files.autoSave': 'off',
    'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true,
    'telemetry.telemetryLevel': 'off',
    'editor.minimap.enabled': false,
    // Off: a wrapped line would read back from the DOM as several lines.
    'editor.wordWrap': 'off',
    'window.restoreWindows': 'none',
    'workbench.editor.enablePreview': false,
    ...extra,
  };
}

export class Workbench {
  constructor({ codeServer, vsix, settings }) {
    this.codeServer = codeServer; // .../node_modules/code-server
    this.vsix = vsix;
    this.root = mkdtempSync(join(tmpdir(), 'inkstream-vscode-e2e-'));
    this.userData = join(this.root, 'user-data');
    this.extensions = join(this.root, 'extensions');
    this.workspace = join(this.root, 'workspace');
    this.serverLog = join(this.root, 'inkstream.log');
    for (const d of [join(this.userData, 'User'), this.extensions, this.workspace]) mkdirSync(d, { recursive: true });
    this.writeSettings(settings);
  }

  // The workspace's .vscode/settings.json (VS Code notices changes to it at
  // once; code-server does not watch the user settings file).
  // Returns false when they are unchanged (VS Code then reports no change).
  workspaceSettings(settings) {
    const text = JSON.stringify(settings, null, 2);
    if (text === this.lastWorkspaceSettings) return false;
    this.lastWorkspaceSettings = text;
    mkdirSync(join(this.workspace, '.vscode'), { recursive: true });
    writeFileSync(join(this.workspace, '.vscode', 'settings.json'), text);
    return true;
  }

  // Saves the active editor and waits until it is no longer dirty.
  async save() {
    await sleep(300); // an edit made by an extension command arrives after the key
    await this.page.keyboard.press('Control+S');
    await this.page
      .waitForFunction(() => !document.querySelector('.tab.active.dirty'), null, { timeout: 5000 })
      .catch(() => {});
    await sleep(100);
  }

  writeSettings(settings) {
    this.settings = settings;
    writeFileSync(join(this.userData, 'User', 'settings.json'), JSON.stringify(userSettings(settings), null, 2));
  }

  entry() {
    return join(this.codeServer, 'out/node/entry.js');
  }

  install() {
    const r = spawnSync(process.execPath, [this.entry(), '--user-data-dir', this.userData, '--extensions-dir', this.extensions, '--install-extension', this.vsix], {
      encoding: 'utf8',
      timeout: 120000,
    });
    if (r.status !== 0) throw new Error(`installing the extension failed: ${r.stdout}\n${r.stderr}`);
  }

  async start() {
    const config = join(this.root, 'code-server.yaml');
    writeFileSync(config, 'bind-addr: 127.0.0.1:0\nauth: none\ncert: false\n');
    this.proc = spawn(
      process.execPath,
      [
        this.entry(),
        '--config', config,
        '--user-data-dir', this.userData,
        '--extensions-dir', this.extensions,
        '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
        '--disable-getting-started-override', '--ignore-last-opened',
      ],
      {
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        // No extension marketplace: its look-ups go to a closed loopback port.
        env: { ...process.env, EXTENSIONS_GALLERY: JSON.stringify({ serviceUrl: 'http://127.0.0.1:9/gallery', itemUrl: 'http://127.0.0.1:9/item' }) },
      },
    );
    this.log = '';
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`code-server did not start:\n${this.log}`)), 60000);
      const onData = (b) => {
        this.log += b.toString();
        const m = /HTTP server listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(this.log);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      };
      this.proc.stdout.on('data', onData);
      this.proc.stderr.on('data', onData);
      this.proc.on('exit', (code) => reject(new Error(`code-server exited (${code}):\n${this.log}`)));
    });
    this.url = `http://127.0.0.1:${port}/`;
    this.browser = await chromium.launch({ executablePath: findChromium(), args: ['--no-sandbox', '--disable-gpu'] });
    this.page = await this.browser.newPage({ viewport: { width: 1400, height: 900 } });
    this.page.on('pageerror', (e) => (this.pageErrors = (this.pageErrors ?? '') + e.message + '\n'));
    await this.page.goto(`${this.url}?folder=${encodeURIComponent(this.workspace)}`);
    await this.page.waitForSelector('.monaco-workbench', { timeout: 90000 });
    await this.page.waitForSelector('.statusbar', { timeout: 60000 });
  }

  async stop() {
    try {
      await this.browser?.close();
    } catch {}
    if (this.proc && this.proc.exitCode === null) {
      try {
        process.kill(-this.proc.pid, 'SIGTERM');
      } catch {}
      await sleep(300);
      try {
        process.kill(-this.proc.pid, 'SIGKILL');
      } catch {}
    }
  }

  file(name, text) {
    const p = join(this.workspace, name);
    writeFileSync(p, text);
    return p;
  }

  readFile(name) {
    return readFileSync(join(this.workspace, name), 'utf8');
  }

  // The extension's own log (its output channel).
  extensionLog() {
    const logs = join(this.userData, 'logs');
    if (!existsSync(logs)) return '';
    let out = '';
    for (const session of readdirSync(logs)) {
      for (const host of existsSync(join(logs, session)) ? readdirSync(join(logs, session)) : []) {
        const f = join(logs, session, host, 'inkstream.inkstream', 'inkstream.log');
        if (existsSync(f)) out += readFileSync(f, 'utf8');
      }
    }
    return out;
  }

  serverLogText() {
    return existsSync(this.serverLog) ? readFileSync(this.serverLog, 'utf8') : '';
  }

  // Opens a workspace file through Quick Open, cursor at its end. The file
  // is named by its absolute path, which Quick Open can resolve on disk
  // without the workspace's file search (by name, a loaded 2-core machine
  // once missed a file for six tries; the search is the suspected cause,
  // not a proven one). Each try waits longer.
  async open(name) {
    const page = this.page;
    const path = join(this.workspace, name);
    for (let attempt = 0; ; attempt++) {
      const timeout = 5000 * (attempt + 1);
      try {
        await page.keyboard.press('Control+P');
        await page.waitForSelector('.quick-input-widget:not([style*="display: none"]) input', { timeout });
        await page.keyboard.type(path);
        await page.waitForFunction((n) => [...document.querySelectorAll('.quick-input-list .monaco-list-row')].some((r) => r.textContent.includes(n)), name, { timeout });
        await page.keyboard.press('Enter');
        await page.waitForFunction((n) => document.querySelector('.tab.active')?.textContent?.includes(n), name, { timeout });
        break;
      } catch (e) {
        if (attempt >= 5) throw e;
        await page.keyboard.press('Escape');
        await sleep(1000); // the workbench was still starting
      }
    }
    await page.waitForSelector('.monaco-editor.focused', { timeout: 20000 });
    await page.keyboard.press('Control+End');
  }

  async closeEditor() {
    await this.page.keyboard.press('Escape');
    await this.command('View: Revert and Close Editor').catch(() => {});
  }

  // Runs a command by its title through the command palette.
  async command(title) {
    const page = this.page;
    await page.keyboard.press('Control+Shift+P');
    await page.waitForSelector('.quick-input-widget:not([style*="display: none"]) input', { timeout: 20000 });
    await page.keyboard.type(title);
    await sleep(300);
    await page.keyboard.press('Enter');
    await sleep(300);
  }

  async statusText() {
    return this.page.evaluate(() => {
      const el = document.getElementById('inkstream.inkstream.status');
      return el ? el.textContent.trim() : '';
    });
  }

  async waitStatus(re, timeout = 60000) {
    const end = Date.now() + timeout;
    let last = '';
    while (Date.now() < end) {
      last = await this.statusText();
      if (re.test(last)) return last;
      await sleep(100);
    }
    throw new Error(`status bar never matched ${re} (last: "${last}")`);
  }

  // The ghost text now (first line + later lines), '' when none.
  async ghost() {
    await this.defineGhostReader();
    return this.page.evaluate(() => window.__inkstreamGhost());
  }

  async defineGhostReader() {
    await this.page.evaluate(() => {
      if (window.__inkstreamGhost) return;
      window.__inkstreamGhost = () => {
        const ed = document.querySelector('.monaco-editor.focused') || document.querySelector('.monaco-editor');
        if (!ed) return '';
        const first = [...ed.querySelectorAll('.ghost-text-decoration')].map((e) => e.textContent).join('');
        // later lines: one .view-line each (long ones split into several spans)
        const zone = ed.querySelector('.suggest-preview-text');
        const rest = zone ? [...zone.querySelectorAll('.view-line')].map((l) => l.textContent) : [];
        return [first, ...rest].join('\n').replace(/\u00a0/g, ' ');
      };
    });
  }

  // Starts recording the ghost text after every paint (rAF + timeout 0).
  async startSampling() {
    await this.defineGhostReader();
    await this.page.evaluate(() => {
      window.__inkstreamSamples = [];
      window.__inkstreamSampling = true;
      const tick = () => {
        if (!window.__inkstreamSampling) return;
        requestAnimationFrame(() =>
          setTimeout(() => {
            const text = window.__inkstreamGhost();
            const s = window.__inkstreamSamples;
            if (s.length === 0 || s[s.length - 1].text !== text) s.push({ t: performance.now(), text });
            tick();
          }, 0),
        );
      };
      tick();
    });
  }

  // The recorded frames' distinct ghost texts since startSampling(), with times (ms).
  async samples() {
    return this.page.evaluate(() => {
      window.__inkstreamSampling = false;
      return window.__inkstreamSamples || [];
    });
  }

  async waitGhost(pred, timeout = 30000) {
    const end = Date.now() + timeout;
    let g = '';
    while (Date.now() < end) {
      g = await this.ghost();
      if (pred(g)) return g;
      await sleep(20);
    }
    throw new Error(`ghost text never matched (last: ${JSON.stringify(g)})`);
  }

  async screenshot(path) {
    try {
      await this.page.screenshot({ path });
    } catch {}
  }
}
