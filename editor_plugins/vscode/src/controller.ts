// Streamed ghost text. VS Code's stable API cannot update a suggestion it
// shows, so each streamed update re-renders it (see render()), and the
// provider answers from this session's cache. The extension owns the
// request's lifetime (VS Code cancels its provider call on every re-render):
// the session ends when the writer types something else, moves, switches
// editor or dismisses.
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import type { Config } from './config';
import { nextLine, nextWord, wholeWords } from './prose';
import type { PartialParams, StatusParams } from './server';
import { type AcceptArgs, type Pos, samePos, type Session, SessionStore } from './session';
import type { StatusItem } from './status';
import { RenderScheduler } from './throttle';

// How long the provider waits for the first streamed text before answering
// without it (a later update then re-renders).
const FIRST_TEXT_WAIT_MS = 3000;

// How long the provider may hold VS Code's explicit re-ask of an
// automatically shown suggestion before answering with what has grown
// since. VS Code keeps showing the first words meanwhile, and that answer is
// the only growth it can show without a blank frame (later ones need hide +
// trigger): a suggestion that streams for less than this appears in two
// blank-free steps, its first words and the whole.
const HOLD_MS = 1000;

// What VS Code shows of a session: the answer of the last provider call.
interface Shown {
  // Whether that call was automatic: then VS Code re-asks on an explicit
  // trigger *without* first clearing what it shows (no blank frame), and
  // the provider may hold that call while the text grows.
  automatic: boolean;
  text: string; // the selected alternative as shown
  selected: number;
  holding: boolean; // an explicit call is being held
}

interface RequestState {
  cancel: vscode.CancellationTokenSource;
  firstText: (() => void)[]; // provider calls waiting for the first shown text
  finished: (() => void)[]; // provider calls held until the request ends
}

interface LspItem {
  insertText: string | { value: string };
  command?: { command: string; arguments?: unknown[] };
}

export class Controller implements vscode.Disposable {
  private readonly store = new SessionStore(`vscode-${process.pid}`);
  private readonly requests = new Map<Session, RequestState>();
  private readonly shown = new Map<Session, Shown>();
  private readonly scheduler: RenderScheduler;
  private readonly contexts = new Map<string, boolean>();
  private dismissed: { uri: string; version: number; at: Pos } | undefined;
  private readonly rerendering = new Set<string>(); // documents whose re-render is under way
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private config: Config,
    private readonly client: () => Promise<LanguageClient | undefined>,
    private readonly status: StatusItem,
    private readonly output: vscode.LogOutputChannel,
  ) {
    this.scheduler = new RenderScheduler(() => this.render(), config.renderThrottleMs);
    this.disposables.push(
      vscode.workspace.onDidChangeTextDocument((e) => this.onDocumentChange(e)),
      vscode.window.onDidChangeTextEditorSelection((e) => this.onSelection(e)),
      vscode.window.onDidChangeActiveTextEditor((e) => this.onActiveEditor(e)),
      vscode.workspace.onDidCloseTextDocument((d) => this.end(this.store.current(d.uri.toString()), 'closed')),
    );
  }

  setConfig(config: Config): void {
    this.config = config;
    this.scheduler.intervalMs = config.renderThrottleMs;
    if (!config.enable) for (const s of this.store.all()) this.end(s, 'disabled');
  }

  // ---- the inline completion provider -----------------------------------

  async provide(
    document: vscode.TextDocument,
    position: vscode.Position,
    context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ): Promise<vscode.InlineCompletionItem[] | null> {
    if (!this.config.enable) return null;
    const uri = document.uri.toString();
    const automatic = context.triggerKind === vscode.InlineCompletionTriggerKind.Automatic;
    let s = this.store.current(uri);
    if (s && this.applies(s, document, position)) {
      // A re-render, VS Code asking again by itself, or typing through.
      const view = this.shown.get(s);
      if (!automatic && view?.automatic && !s.finished && this.config.renderMethod === 'hold') {
        // The blank-free re-render: hold the call while the text grows.
        view.holding = true;
        await this.waitFor(s, 'finished', token, HOLD_MS);
        view.holding = false;
      } else if (!s.finished && s.count === 0) {
        await this.waitFor(s, 'firstText', token, FIRST_TEXT_WAIT_MS);
      }
      return this.answer(s, document, position, automatic, token);
    }
    if (s) this.end(s, 'moved');
    // A re-render's trigger that arrives after its session ended asks for nothing.
    if (!automatic && this.rerendering.has(uri)) return null;
    // Dismissed here: nothing new until the writer types, moves or presses Alt+\.
    const d = this.dismissed;
    if (d && d.uri === uri && d.version === document.version && samePos(position, d.at)) return null;
    if (automatic) {
      if (!this.config.autoTrigger) return null;
      if (!(await sleep(this.config.idleDelayMs, token))) return null;
    }
    if (context.selectedCompletionInfo) return null; // the suggest widget is open: its item, not prose
    s = await this.startSession(document, position, automatic, token);
    if (!s) return null;
    await this.waitFor(s, 'firstText', token, FIRST_TEXT_WAIT_MS);
    return this.answer(s, document, position, automatic, token);
  }

  // Whether `s` is the document's live session and still describes it and the cursor.
  private applies(s: Session, document: vscode.TextDocument, position: vscode.Position): boolean {
    return (
      this.store.current(s.uri) === s &&
      s.uri === document.uri.toString() &&
      s.version === document.version &&
      samePos(position, s.cursor)
    );
  }

  // What to show while an alternative grows (whole words, if so set).
  private showPolicy(): (text: string, done: boolean) => string {
    return this.config.wholeWords && this.config.streaming ? wholeWords : (t) => t;
  }

  private answer(
    s: Session,
    document: vscode.TextDocument,
    position: vscode.Position,
    automatic: boolean,
    token: vscode.CancellationToken,
  ): vscode.InlineCompletionItem[] | null {
    // VS Code discards the answer of a cancelled call: nothing is shown.
    if (token.isCancellationRequested || !this.applies(s, document, position)) return null;
    // The range starts where the suggestion does on this line, so that text
    // typed since is a prefix of the item (VS Code then shows the rest).
    const start = position.line === s.anchor.line ? new vscode.Position(s.anchor.line, s.anchor.character) : position.with(undefined, 0);
    const typed = document.getText(new vscode.Range(start, position));
    const items = s.ordered().map(({ index, text }) => {
      const item = new vscode.InlineCompletionItem(typed + text.slice(s.consumed.length), new vscode.Range(start, position));
      // Run after VS Code's own accept (a Tab bound elsewhere): the server counts it.
      item.command = { title: 'inkstream: accept', command: 'inkstream.accept', arguments: [s.acceptArgs(index)] };
      return item;
    });
    this.shown.set(s, { automatic, text: s.shown(), selected: s.selected, holding: false });
    this.showState(s);
    return items;
  }

  private async startSession(
    document: vscode.TextDocument,
    position: vscode.Position,
    automatic: boolean,
    token: vscode.CancellationToken,
  ): Promise<Session | undefined> {
    const version = document.version;
    const client = await this.client();
    // (starting the server can take a while: the writer may have moved on)
    if (!client || document.isClosed || token.isCancellationRequested || document.version !== version) return undefined;
    const uri = document.uri.toString();
    this.end(this.store.current(uri), 'replaced');
    const s = this.store.start(uri, { line: position.line, character: position.character }, version, this.showPolicy());
    const req: RequestState = { cancel: new vscode.CancellationTokenSource(), firstText: [], finished: [] };
    this.requests.set(s, req);
    this.setContext('inkstream.requestPending', true);
    this.status.show('writing');
    const params = {
      textDocument: { uri: client.code2ProtocolConverter.asUri(document.uri) },
      position: { line: position.line, character: position.character },
      context: { triggerKind: automatic ? 2 : 1 },
      workDoneToken: s.token,
    };
    // Not VS Code's provider token: each re-render cancels that one.
    client.sendRequest<{ items?: LspItem[] } | LspItem[] | null>('textDocument/inlineCompletion', params, req.cancel.token).then(
      (result) => this.onResponse(s, result),
      (err) => this.onRequestError(s, err),
    );
    return s;
  }

  // Waits until the request's `event` (or `ms`, or VS Code giving up).
  private waitFor(s: Session, event: 'firstText' | 'finished', token: vscode.CancellationToken, ms: number): Promise<void> {
    const req = this.requests.get(s);
    if (!req || s.finished || (event === 'firstText' && s.count > 0)) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let settled = false;
      const done = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sub.dispose();
        resolve();
      };
      const timer = setTimeout(done, ms);
      const sub = token.onCancellationRequested(done);
      req[event].push(done);
    });
  }

  // Resolves the calls waiting for `event`; whether there were any.
  private wake(req: RequestState | undefined, event: 'firstText' | 'finished'): boolean {
    const waiting = req ? req[event].splice(0) : [];
    waiting.forEach((f) => f());
    return waiting.length > 0;
  }

  // ---- what the server sends -------------------------------------------

  onPartial(p: PartialParams): void {
    const s = this.store.forToken(p.token);
    if (!s || !Array.isArray(p.items)) return;
    if (p.requestId !== undefined) s.requestId = p.requestId;
    if (!s.update(p.items) || s.count === 0) return;
    // A provider call waiting for the first text answers it; else re-render.
    if (!this.wake(this.requests.get(s), 'firstText')) this.scheduler.request();
  }

  onStatus(p: StatusParams): void {
    if (p.message !== 'cancelled')
      this.status.setFigures({
        model: p.model,
        latencyMs: p.requestId !== undefined ? p.latencyMs : undefined,
        tokensPerSecond: p.tokensPerSecond || undefined,
        cacheHitRate: p.engine?.cacheHitRate,
      });
    if (p.requestId === undefined) {
      // a model finished loading (or failed to)
      if (p.message && p.message !== 'ready') this.status.show('error', p.message);
      else if (this.status.state !== 'writing') this.status.show(this.config.enable ? 'ready' : 'off');
    }
  }

  private onResponse(s: Session, result: { items?: LspItem[] } | LspItem[] | null): void {
    const req = this.requests.get(s);
    this.requests.delete(s);
    const list = Array.isArray(result) ? result : (result?.items ?? []);
    s.finish(
      list.map((it) => ({
        insertText: typeof it.insertText === 'string' ? it.insertText : it.insertText.value,
        accept: it.command?.arguments?.[0] as AcceptArgs | undefined,
      })),
    );
    this.afterRequest(s, req);
  }

  private onRequestError(s: Session, err: unknown): void {
    const req = this.requests.get(s);
    this.requests.delete(s);
    s.end(); // what was streamed and shown stays usable
    const code = (err as { code?: number })?.code;
    // -32800 cancelled, -32801 content modified (typing), -32802 superseded: normal.
    if (code !== -32800 && code !== -32801 && code !== -32802 && !req?.cancel.token.isCancellationRequested) {
      const message = (err as { message?: string })?.message ?? String(err);
      this.output.appendLine(`[inkstream] suggestion failed: ${message}`);
      this.status.show('error', message);
    }
    this.afterRequest(s, req);
  }

  private afterRequest(s: Session, req: RequestState | undefined): void {
    const woke = [this.wake(req, 'firstText'), this.wake(req, 'finished')];
    const answered = woke[0] || woke[1];
    if (this.store.current(s.uri) !== s) return;
    this.setContext('inkstream.requestPending', false);
    if (s.exhausted) {
      this.end(s, 'nothing to show');
      return;
    }
    if (!answered) this.scheduler.request(); // a waiting call answers with the final text itself
    this.showState(s);
  }

  // ---- rendering --------------------------------------------------------

  private async render(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) return;
    const s = this.store.current(editor.document.uri.toString());
    if (!s || !editor.selection.isEmpty || !this.applies(s, editor.document, editor.selection.active)) return;
    const view = this.shown.get(s);
    if (view?.holding) return; // the held call answers with the latest text
    if (view && view.text === s.shown() && view.selected === s.selected) return; // nothing new to show
    this.rerendering.add(s.uri);
    try {
      if (view?.automatic && this.config.renderMethod === 'hold') {
        // VS Code re-asks an explicit trigger over an automatic answer while
        // still showing it: growth without a blank frame.
        await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
      } else if (this.config.renderMethod === 'hideThenTrigger') {
        await vscode.commands.executeCommand('editor.action.inlineSuggest.hide');
        await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
      } else {
        // Otherwise VS Code would keep its answer: hide, then trigger, as one
        // command sequence in the workbench (the gap is one provider call).
        await vscode.commands.executeCommand('runCommands', {
          commands: ['editor.action.inlineSuggest.hide', 'editor.action.inlineSuggest.trigger'],
        });
      }
    } finally {
      this.rerendering.delete(s.uri);
    }
  }

  private setContext(key: string, value: boolean): void {
    if (this.contexts.get(key) === value) return;
    this.contexts.set(key, value);
    void vscode.commands.executeCommand('setContext', key, value);
  }

  // The context keys the extension's key bindings use, and the status bar.
  private showState(s: Session): void {
    this.setContext('inkstream.suggestionVisible', s.count > 0);
    const n = s.count;
    const alt = n > 1 ? `${s.ordinal}/${n}` : '';
    if (!s.finished) this.status.show('writing', '', alt);
    else if (this.status.state !== 'error') this.status.show('ready', '', alt);
  }

  // ---- the writer's edits, moves and editor switches -------------------

  private onDocumentChange(e: vscode.TextDocumentChangeEvent): void {
    const s = this.store.current(e.document.uri.toString());
    if (!s || e.contentChanges.length === 0) return; // (empty: only the dirty state changed)
    const c = e.contentChanges[0];
    // Suggestions use \n; a CRLF document gets \r\n for it.
    const text = e.document.eol === vscode.EndOfLine.CRLF ? c.text.replace(/\r\n/g, '\n') : c.text;
    if (
      e.contentChanges.length === 1 &&
      c.rangeLength === 0 &&
      samePos({ line: c.range.start.line, character: c.range.start.character }, s.cursor) &&
      text.length > 0 &&
      s.consume(text)
    ) {
      s.version = e.document.version; // typed (or accepted) through the suggestion
      if (s.exhausted) this.end(s, 'typed through');
      else this.showState(s);
      return;
    }
    this.end(s, 'edited');
  }

  private onSelection(e: vscode.TextEditorSelectionChangeEvent): void {
    if (e.textEditor !== vscode.window.activeTextEditor) return; // (the same file in another editor)
    const s = this.store.current(e.textEditor.document.uri.toString());
    if (!s) return;
    const sel = e.selections[0];
    if (e.selections.length !== 1 || !sel.isEmpty || !samePos(sel.active, s.cursor)) this.end(s, 'moved');
  }

  private onActiveEditor(editor: vscode.TextEditor | undefined): void {
    const uri = editor?.document.uri.toString();
    for (const s of this.store.all()) if (s.uri !== uri) this.end(s, 'switched editor');
  }

  // Ends a session: its request is cancelled ($/cancelRequest) if it runs.
  private end(s: Session | undefined, why: string): void {
    if (!s || this.store.current(s.uri) !== s) return;
    this.store.drop(s.uri);
    const req = this.requests.get(s);
    if (req) {
      req.cancel.cancel();
      this.requests.delete(s);
      this.wake(req, 'firstText');
      this.wake(req, 'finished');
    }
    this.shown.delete(s);
    this.scheduler.cancel();
    this.setContext('inkstream.suggestionVisible', false);
    this.setContext('inkstream.requestPending', false);
    if (this.status.state === 'writing') this.status.show(this.config.enable ? 'ready' : 'off');
    this.output.appendLine(`[inkstream] suggestion ended: ${why}`);
  }

  // ---- commands ----------------------------------------------------------

  private active(): { editor: vscode.TextEditor; s: Session } | undefined {
    const editor = vscode.window.activeTextEditor;
    if (!editor) return undefined;
    const s = this.store.current(editor.document.uri.toString());
    if (!s || !editor.selection.isEmpty || !this.applies(s, editor.document, editor.selection.active)) return undefined;
    return { editor, s };
  }

  // Inserts `part` of the shown rest of the selected alternative at the
  // cursor (accept all / word / line). Taking all of a complete alternative
  // counts as accepting it. Without a suggestion here, the key does what it
  // would have done (`fallback`).
  private async take(part: (rest: string) => string, fallback?: string): Promise<void> {
    const a = this.active();
    const rest = a ? a.s.remainder() : '';
    if (!a || !rest) {
      if (fallback) await vscode.commands.executeCommand(fallback);
      return;
    }
    const { editor, s } = a;
    const index = s.selected;
    const text = part(rest);
    const complete = text === rest && s.complete(index);
    const args = s.acceptArgs(index);
    const at = s.cursor;
    const ok = await editor.edit((b) => b.insert(new vscode.Position(at.line, at.character), text));
    if (!ok) return;
    if (complete) {
      this.end(s, 'accepted');
      await vscode.commands.executeCommand('editor.action.inlineSuggest.hide');
      await this.runServerCommand('inkstream.accept', args);
    } else {
      this.scheduler.request(); // the rest (or what still streams) stays shown
    }
  }

  acceptAll(): Promise<void> {
    return this.take((rest) => rest, 'tab');
  }

  acceptWord(): Promise<void> {
    return this.take(nextWord, 'cursorWordEndRight');
  }

  acceptLine(): Promise<void> {
    return this.take(nextLine);
  }

  async cycle(delta: 1 | -1): Promise<void> {
    const a = this.active();
    if (!a || a.s.count < 2) return;
    a.s.cycle(delta);
    this.showState(a.s);
    this.scheduler.request();
  }

  async dismiss(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    const s = editor && this.store.current(editor.document.uri.toString());
    if (editor) {
      const at = editor.selection.active;
      this.dismissed = { uri: editor.document.uri.toString(), version: editor.document.version, at: { line: at.line, character: at.character } };
    }
    this.end(s, 'dismissed');
    await vscode.commands.executeCommand('editor.action.inlineSuggest.hide');
  }

  // Alt+\: a new explicit request here (VS Code's explicit trigger).
  async trigger(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) return;
    this.end(this.store.current(editor.document.uri.toString()), 'new request');
    this.dismissed = undefined;
    await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
  }

  private async runServerCommand(command: string, args: AcceptArgs): Promise<void> {
    try {
      await vscode.commands.executeCommand(command, args);
    } catch (e) {
      this.output.appendLine(`[inkstream] ${command} failed: ${String(e)}`);
    }
  }

  // The server stopped or restarted: its requests are gone.
  serverStopped(): void {
    for (const s of this.store.all()) this.end(s, 'server stopped');
  }

  dispose(): void {
    for (const s of this.store.all()) this.end(s, 'disposed');
    this.disposables.forEach((d) => d.dispose());
  }
}

// Waits `ms`; false if `token` was cancelled first.
function sleep(ms: number, token: vscode.CancellationToken): Promise<boolean> {
  if (token.isCancellationRequested) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      sub.dispose();
      resolve(true);
    }, ms);
    const sub = token.onCancellationRequested(() => {
      clearTimeout(timer);
      sub.dispose();
      resolve(false);
    });
  });
}
