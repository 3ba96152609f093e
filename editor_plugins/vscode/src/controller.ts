// Streamed ghost text. VS Code's stable API cannot update a suggestion it
// shows, so each streamed update re-renders it: hide + trigger, run in the
// workbench as one command sequence, and the provider answers the trigger
// from this session's cache. The extension owns the request's lifetime (VS
// Code cancels its provider call on every hide): the session ends when the
// writer types something else, moves, switches editor or dismisses.
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import type { Config } from './config';
import { nextLine, nextWord, wholeWords } from './prose';
import type { PartialParams, StatusParams } from './server';
import { type AcceptArgs, type Pos, samePos, Session, SessionStore } from './session';
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

interface RequestState {
  cancel: vscode.CancellationTokenSource;
  waiters: (() => void)[]; // provider calls waiting for the first text
  finishers: (() => void)[]; // provider calls held until the request ends
}

// What VS Code shows of a session: the answer of the last provider call.
interface Shown {
  // Whether that call was automatic: then VS Code re-asks on an explicit
  // trigger *without* first clearing what it shows (no blank frame), and
  // the provider may hold that call until the text has grown.
  automatic: boolean;
  text: string; // the selected alternative as shown
  selected: number;
  holding: boolean; // an explicit call is being held
}

interface LspItem {
  insertText: string | { value: string };
  command?: { command: string; arguments?: unknown[] };
}

export class Controller implements vscode.Disposable {
  private readonly store = new SessionStore(`vscode-${process.pid}`);
  private readonly requests = new Map<Session, RequestState>();
  private readonly scheduler: RenderScheduler;
  private readonly shown = new Map<Session, Shown>();
  private contextVisible = false;
  private forceNext = false; // the next provider call is an explicit request (Alt+\)
  private dismissed: { uri: string; version: number; at: Pos } | undefined;
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

  // ---- the provider (vscode-languageclient middleware) -----------------

  async provide(
    document: vscode.TextDocument,
    position: vscode.Position,
    context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ): Promise<vscode.InlineCompletionItem[] | null> {
    if (!this.config.enable) return null;
    const uri = document.uri.toString();
    let s = this.store.current(uri);
    if (s && this.applies(s, document, position)) {
      // A re-render, VS Code asking again by itself, or typing through.
      const automatic = context.triggerKind === vscode.InlineCompletionTriggerKind.Automatic;
      const view = this.shown.get(s);
      if (!automatic && view?.automatic && !s.finished && this.config.renderMethod === 'hold') {
        // The no-blank re-render: hold the call while the text grows.
        view.holding = true;
        await this.grown(s, token, HOLD_MS);
        view.holding = false;
      } else if (!s.finished && this.visible(s).length === 0) {
        await this.firstText(s, token);
      }
      return this.applies(s, document, position) ? this.items(s, document, position, automatic) : null;
    }
    if (s) this.end(s, 'moved');
    const explicit = this.forceNext || context.triggerKind === vscode.InlineCompletionTriggerKind.Invoke;
    this.forceNext = false;
    if (!explicit) {
      if (!this.config.autoTrigger) return null;
      // Dismissed here: nothing new until the writer types or moves.
      const d = this.dismissed;
      if (d && d.uri === uri && d.version === document.version && samePos(position, d.at)) return null;
      if (!(await sleep(this.config.idleDelayMs, token))) return null;
    }
    if (context.selectedCompletionInfo) return null; // the suggest widget is open: its item, not prose
    s = await this.startSession(document, position, explicit);
    if (!s) return null;
    await this.firstText(s, token);
    return this.applies(s, document, position) ? this.items(s, document, position, !explicit) : null;
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

  // The alternatives as shown now (whole words while they grow, if so set).
  private visible(s: Session): { index: number; text: string }[] {
    return s.ordered((text, done) => (this.config.wholeWords && this.config.streaming ? wholeWords(text, done) : text));
  }

  private items(s: Session, document: vscode.TextDocument, position: vscode.Position, automatic: boolean): vscode.InlineCompletionItem[] {
    // The range starts where the suggestion does on this line, so that text
    // typed since is a prefix of the item (VS Code then shows the rest).
    const start = position.line === s.anchor.line ? new vscode.Position(s.anchor.line, s.anchor.character) : position.with(undefined, 0);
    const typed = document.getText(new vscode.Range(start, position));
    const out = this.visible(s).map(({ index, text }) => {
      const item = new vscode.InlineCompletionItem(typed + text.slice(s.consumed.length), new vscode.Range(start, position));
      // Run after VS Code's own accept (a Tab bound elsewhere): the server counts it.
      item.command = { title: 'inkstream: accept', command: 'inkstream.accept', arguments: [s.acceptArgs(index)] };
      return item;
    });
    const selected = this.visible(s).find((v) => v.index === s.selected);
    this.shown.set(s, { automatic, text: selected?.text ?? '', selected: s.selected, holding: false });
    this.setContext(out.length > 0);
    this.showStatus(s);
    return out;
  }

  private async startSession(document: vscode.TextDocument, position: vscode.Position, explicit: boolean): Promise<Session | undefined> {
    const client = await this.client();
    if (!client || document.isClosed) return undefined;
    const s = this.store.start(document.uri.toString(), { line: position.line, character: position.character }, document.version);
    const req: RequestState = { cancel: new vscode.CancellationTokenSource(), waiters: [], finishers: [] };
    this.requests.set(s, req);
    this.status.show('writing');
    const params = {
      textDocument: { uri: client.code2ProtocolConverter.asUri(document.uri) },
      position: { line: position.line, character: position.character },
      context: { triggerKind: explicit ? 1 : 2 },
      workDoneToken: s.token,
    };
    // Not VS Code's provider token: each re-render cancels that one.
    client.sendRequest<{ items?: LspItem[] } | LspItem[] | null>('textDocument/inlineCompletion', params, req.cancel.token).then(
      (result) => this.onResponse(s, result),
      (err) => this.onRequestError(s, err),
    );
    return s;
  }

  private firstText(s: Session, token: vscode.CancellationToken): Promise<void> {
    const req = this.requests.get(s);
    if (!req || s.finished || this.visible(s).length > 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let settled = false;
      const done = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sub.dispose();
        resolve();
      };
      const timer = setTimeout(done, FIRST_TEXT_WAIT_MS);
      const sub = token.onCancellationRequested(done);
      req.waiters.push(done);
    });
  }

  // Waits until the session finished or `ms` passed (or VS Code gave up).
  private grown(s: Session, token: vscode.CancellationToken, ms: number): Promise<void> {
    const req = this.requests.get(s);
    if (!req || s.finished) return Promise.resolve();
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
      req.finishers.push(done);
    });
  }

  private wake(s: Session): boolean {
    const req = this.requests.get(s);
    if (!req || req.waiters.length === 0) return false;
    const w = req.waiters.splice(0);
    w.forEach((f) => f());
    return true;
  }

  // ---- what the server sends -------------------------------------------

  onPartial(p: PartialParams): void {
    const s = this.store.forToken(p.token);
    if (!s || !Array.isArray(p.items)) return;
    if (p.requestId !== undefined) s.requestId = p.requestId;
    if (!s.update(p.items)) return;
    if (this.visible(s).length === 0) return;
    // A provider call waiting for its first text answers it; else re-render.
    if (!this.wake(s)) this.scheduler.request();
  }

  onStatus(p: StatusParams): void {
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
        accept: (it.command?.arguments?.[0] as AcceptArgs | undefined) ?? undefined,
      })),
    );
    this.afterRequest(s, req);
  }

  private onRequestError(s: Session, err: unknown): void {
    const req = this.requests.get(s);
    this.requests.delete(s);
    s.end(); // what was streamed stays usable
    const code = (err as { code?: number })?.code;
    // -32800 cancelled, -32801 content modified, -32802 superseded: normal.
    if (code !== undefined && code !== -32800 && code !== -32801 && code !== -32802 && !req?.cancel.token.isCancellationRequested) {
      const message = (err as { message?: string }).message ?? String(err);
      this.output.appendLine(`[inkstream] suggestion failed: ${message}`);
      this.status.show('error', message);
    }
    this.afterRequest(s, req);
  }

  private afterRequest(s: Session, req: RequestState | undefined): void {
    this.wake(s);
    req?.finishers.splice(0).forEach((f) => f());
    if (this.store.current(s.uri) !== s) return;
    if (s.count === 0) {
      this.end(s, 'empty');
      return;
    }
    this.scheduler.request();
    this.showStatus(s);
  }

  // ---- rendering --------------------------------------------------------

  private async render(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) return;
    const s = this.store.current(editor.document.uri.toString());
    if (!s || !editor.selection.isEmpty || !this.applies(s, editor.document, editor.selection.active)) return;
    const view = this.shown.get(s);
    if (view?.holding) return; // the held call answers with the latest text
    const selected = this.visible(s).find((v) => v.index === s.selected);
    if (view && selected && view.text === selected.text && view.selected === s.selected) return; // nothing new to show
    if (view?.automatic && this.config.renderMethod === 'hold') {
      // VS Code re-asks an explicit trigger over an automatic answer while
      // still showing it: growth without a blank frame.
      await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
      return;
    }
    // Otherwise VS Code would keep its answer: hide, then trigger, as one
    // command sequence in the workbench (the gap is one provider call).
    if (this.config.renderMethod === 'hideThenTrigger') {
      await vscode.commands.executeCommand('editor.action.inlineSuggest.hide');
      await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
      return;
    }
    await vscode.commands.executeCommand('runCommands', {
      commands: ['editor.action.inlineSuggest.hide', 'editor.action.inlineSuggest.trigger'],
    });
  }

  private setContext(visible: boolean): void {
    if (visible === this.contextVisible) return;
    this.contextVisible = visible;
    void vscode.commands.executeCommand('setContext', 'inkstream.suggestionVisible', visible);
  }

  private showStatus(s: Session): void {
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
    const cursor = s.cursor;
    if (
      e.contentChanges.length === 1 &&
      c.rangeLength === 0 &&
      samePos({ line: c.range.start.line, character: c.range.start.character }, cursor) &&
      c.text.length > 0 &&
      s.consume(c.text)
    ) {
      s.version = e.document.version; // typed (or accepted) through the suggestion
      if (s.count === 0 && s.finished) this.end(s, 'typed through');
      else this.showStatus(s);
      return;
    }
    this.end(s, 'edited');
  }

  private onSelection(e: vscode.TextEditorSelectionChangeEvent): void {
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
      this.wake(s);
      req.finishers.splice(0).forEach((f) => f());
    }
    this.shown.delete(s);
    this.scheduler.cancel();
    this.setContext(false);
    if (this.status.state === 'writing') this.status.show(this.config.enable ? 'ready' : 'off');
    this.output.appendLine(`[inkstream] suggestion ended: ${why}`);
  }

  // ---- commands ----------------------------------------------------------

  private active(): { editor: vscode.TextEditor; s: Session } | undefined {
    const editor = vscode.window.activeTextEditor;
    if (!editor) return undefined;
    const s = this.store.current(editor.document.uri.toString());
    if (!s || !this.applies(s, editor.document, editor.selection.active)) return undefined;
    return { editor, s };
  }

  // Inserts `text` of the selected alternative at the cursor (accept all /
  // word / line); when that completes the alternative it counts as accepted.
  private async take(part: (rest: string) => string): Promise<void> {
    const a = this.active();
    if (!a) return;
    const { editor, s } = a;
    const index = s.selected;
    const rest = s.remainder();
    const text = part(rest);
    if (!text) return;
    const complete = text === rest && (s.done(index) || s.finished);
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
    return this.take((rest) => (this.config.wholeWords && this.config.streaming ? this.shownRest() : rest));
  }

  acceptWord(): Promise<void> {
    return this.take(nextWord);
  }

  acceptLine(): Promise<void> {
    return this.take(nextLine);
  }

  // The rest of the selected alternative as shown (accept all takes what the
  // writer sees, not words not yet shown).
  private shownRest(): string {
    const a = this.active();
    if (!a) return '';
    const shown = this.visible(a.s).find((v) => v.index === a.s.selected);
    return shown ? shown.text.slice(a.s.consumed.length) : '';
  }

  async cycle(delta: 1 | -1): Promise<void> {
    const a = this.active();
    if (!a || a.s.count < 2) return;
    a.s.cycle(delta);
    this.showStatus(a.s);
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

  async trigger(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) return;
    this.end(this.store.current(editor.document.uri.toString()), 'new request');
    this.forceNext = true;
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

export type { Pos };
