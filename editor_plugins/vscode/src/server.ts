// The `inkstream lsp` process, through vscode-languageclient: start, stop,
// restart after a crash (on the next request, bounded), settings, and the
// server's own notifications.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  type LanguageClientOptions,
  type Middleware,
  type ServerOptions,
  State as ClientState,
  TransportKind,
} from 'vscode-languageclient/node';
import { type Config, serverSettings } from './config';
import { RestartPolicy } from './restart';

export interface PartialParams {
  requestId?: number | string;
  token?: unknown;
  items: { index: number; text: string; done: boolean }[];
}

export interface StatusParams {
  requestId?: number | string;
  token?: unknown;
  model?: string;
  message?: string;
  latencyMs?: number;
  tokensPerSecond?: number;
  engine?: { cacheHitRate?: number };
}

export interface ServerEvents {
  middleware: Middleware;
  onPartial(p: PartialParams): void;
  onStatus(p: StatusParams): void;
  // `why`: what the status bar says when it is not running.
  onStateChange(running: boolean, crashed: boolean, why?: string): void;
}

// `name` as a path, or looked up on PATH; undefined if it is not an executable file.
export function findExecutable(name: string): string | undefined {
  const isExe = (p: string) => {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (name.includes(path.sep)) return isExe(name) ? name : undefined;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExe(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

export class InkstreamServer implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient | undefined> | undefined;
  private stopping = false;
  crashed = false;
  private gaveUp = false;
  private readonly restarts = new RestartPolicy(3, 60000);
  private sentSettings: Record<string, unknown> = {};

  constructor(
    readonly output: vscode.LogOutputChannel,
    private readonly settingKeys: string[],
    private readonly events: ServerEvents,
    private config: Config,
  ) {}

  get running(): LanguageClient | undefined {
    return this.client && this.client.state === ClientState.Running ? this.client : undefined;
  }

  // The running client, starting (or, after a crash, restarting) it first.
  // Undefined when it cannot run (not found, or it keeps crashing).
  async ready(): Promise<LanguageClient | undefined> {
    if (this.running) return this.running;
    if (this.starting) return this.starting;
    if (this.crashed) {
      if (this.gaveUp || !this.restarts.allow(Date.now())) {
        if (!this.gaveUp) {
          this.gaveUp = true;
          void vscode.window.showErrorMessage(
            `inkstream: the server keeps exiting (restarted ${this.restarts.max} times within a minute); not restarting it for now (see Output › inkstream, or run "inkstream: Restart the server").`,
          );
          this.events.onStateChange(false, true, 'the server keeps exiting; use the menu to restart it');
        }
        return undefined;
      }
      this.output.appendLine('[inkstream] restarting the server after it exited');
    }
    return this.start();
  }

  start(): Promise<LanguageClient | undefined> {
    if (this.starting) return this.starting;
    this.starting = this.doStart().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async doStart(): Promise<LanguageClient | undefined> {
    const cfg = this.config;
    const exe = findExecutable(cfg.serverPath);
    if (!exe) {
      // One clear message (the client library's own would follow a failed spawn).
      this.crashed = true;
      this.gaveUp = true;
      const why = `inkstream: the server "${cfg.serverPath}" was not found. Set "inkstream.server.path" to the inkstream executable (e.g. build/cli/inkstream).`;
      this.output.appendLine(`[inkstream] ${why}`);
      void vscode.window.showErrorMessage(why);
      this.events.onStateChange(false, true, `"${cfg.serverPath}" not found (inkstream.server.path)`);
      return undefined;
    }
    const serverOptions: ServerOptions = {
      command: exe,
      args: ['lsp', ...cfg.serverArgs],
      transport: TransportKind.stdio,
    };
    this.sentSettings = serverSettings(this.settingKeys);
    const clientOptions: LanguageClientOptions = {
      documentSelector: cfg.languages.map((language) => ({ language })),
      outputChannel: this.output,
      initializationOptions: { ...this.sentSettings, streaming: cfg.streaming },
      middleware: this.events.middleware,
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue, handled: true }),
        closed: () => {
          if (!this.stopping) this.onCrash();
          return { action: CloseAction.DoNotRestart, handled: true };
        },
      },
    };
    const client = new LanguageClient('inkstream', 'inkstream', serverOptions, clientOptions);
    client.onNotification('inkstream/partialCompletion', (p: PartialParams) => this.events.onPartial(p));
    client.onNotification('inkstream/status', (p: StatusParams) => this.events.onStatus(p));
    this.client = client;
    try {
      await client.start();
    } catch (e) {
      this.client = undefined;
      const why = e instanceof Error ? e.message : String(e);
      this.output.appendLine(`[inkstream] could not start "${cfg.serverPath} lsp": ${why}`);
      // Once per run of failures (a crash already said so; restarts are bounded).
      if (!this.crashed)
        void vscode.window.showErrorMessage(`inkstream: could not start the server "${cfg.serverPath}" (${why}); see Output › inkstream.`);
      this.crashed = true;
      this.events.onStateChange(false, true, `could not start: ${why}`);
      return undefined;
    }
    this.crashed = false;
    this.events.onStateChange(true, false);
    return client;
  }

  private onCrash(): void {
    this.crashed = true;
    this.client = undefined;
    this.output.appendLine('[inkstream] the server exited');
    void vscode.window.showWarningMessage('inkstream: the server stopped (see Output › inkstream); it restarts with the next suggestion.');
    this.events.onStateChange(false, true, 'the server stopped; it restarts with the next suggestion');
  }

  async stop(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    this.stopping = true;
    try {
      if (c.state !== ClientState.Stopped) await c.stop(2000);
    } catch {
      // already gone
    } finally {
      this.stopping = false;
    }
    this.events.onStateChange(false, false);
  }

  // A deliberate restart (settings, command): the crash limit starts afresh.
  async restart(config: Config): Promise<void> {
    this.config = config;
    await this.stop();
    this.crashed = false;
    this.gaveUp = false;
    await this.start();
  }

  // Sends the server settings after a change; a setting the writer removed
  // needs a restart to get the server's default back.
  async settingsChanged(config: Config): Promise<void> {
    if (this.starting) await this.starting; // (its initializationOptions may predate the change)
    const next = serverSettings(this.settingKeys);
    const removed = Object.keys(this.sentSettings).some((k) => !(k in next));
    if (removed) return this.restart(config);
    this.sentSettings = next;
    const c = this.running;
    this.output.info(`server settings: ${JSON.stringify(next)}${c ? '' : ' (sent when the server starts)'}`);
    if (c) await c.sendNotification('workspace/didChangeConfiguration', { settings: { inkstream: next } });
  }

  dispose(): void {
    void this.stop();
  }
}
