// One suggestion session: the alternatives streamed for one request at one
// place in one document, what the writer has typed or accepted of them since,
// and which alternative is selected. Pure (no vscode import): unit-tested
// under plain Node. The controller keeps at most one per document.

export interface Pos {
  line: number;
  character: number;
}

// The arguments of the server's inkstream.accept command for one item.
export interface AcceptArgs {
  requestId?: number | string;
  index: number;
  source: string;
  partial?: boolean;
}

interface Alternative {
  text: string; // the whole suggestion so far (replace semantics)
  done: boolean;
  accept?: AcceptArgs; // from the final response
}

// The position after `text` typed at `from` (lines end at \n, \r\n or \r;
// characters are UTF-16 code units, as VS Code and LSP count them).
export function advance(from: Pos, text: string): Pos {
  let { line, character } = from;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n' || (c === '\r' && text[i + 1] !== '\n')) {
      line++;
      character = 0;
    } else if (c !== '\r') {
      character++;
    }
  }
  return { line, character };
}

export function samePos(a: Pos, b: Pos): boolean {
  return a.line === b.line && a.character === b.character;
}

export class Session {
  // What the writer has typed or accepted of the selected alternative since
  // the request (the document between `anchor` and the cursor).
  consumed = '';
  selected = 0;
  requestId: number | string | undefined;
  finished = false; // the server's response arrived (or the request ended)
  private alternatives: Alternative[] = [];

  constructor(
    readonly uri: string,
    readonly anchor: Pos,
    public version: number, // the document version the session is valid for
    readonly token: string,
    // What of an alternative is shown (e.g. whole words while it grows):
    // selection, cycling, i/N and accepting all go by what is shown.
    private readonly show: (text: string, done: boolean) => string = (t) => t,
  ) {}

  // The cursor position this session expects.
  get cursor(): Pos {
    return advance(this.anchor, this.consumed);
  }

  // A streamed update: each item's text replaces the previous one. An update
  // that would shrink an alternative (never sent by the server) is ignored,
  // so shown text only grows.
  update(items: { index: number; text: string; done: boolean }[]): boolean {
    let changed = false;
    for (const it of items) {
      const old = this.alternatives[it.index] ?? { text: '', done: false };
      if (it.text.length < old.text.length || !it.text.startsWith(old.text)) continue;
      if (it.text !== old.text || it.done !== old.done) changed = true;
      this.alternatives[it.index] = { text: it.text, done: it.done || old.done };
    }
    return changed;
  }

  // The response: the final items in the server's order (empty and duplicate
  // alternatives are already left out there), each with its accept command.
  finish(items: { insertText: string; accept?: AcceptArgs }[]): void {
    const chosen = this.alternatives[this.selected]?.text ?? '';
    this.alternatives = items.map((it) => ({ text: it.insertText, done: true, accept: it.accept }));
    this.finished = true;
    // Keep the alternative the writer is looking at selected.
    const keep = this.alternatives.findIndex((a) => a.text.startsWith(chosen) && chosen.length > 0);
    this.selected = keep >= 0 ? keep : 0;
    this.reselect();
  }

  // The request ended without a response (cancelled, failed): what was
  // streamed and shown stays usable; a cut alternative stays unfinished, so
  // it shows only up to its last whole word.
  end(): void {
    this.finished = true;
    this.reselect();
  }

  // The shown text of alternative `index`.
  shown(index = this.selected): string {
    const a = this.alternatives[index];
    return a ? this.show(a.text, a.done) : '';
  }

  // Indices of the alternatives whose shown text still continues what was consumed.
  live(): number[] {
    const out: number[] = [];
    this.alternatives.forEach((a, i) => {
      if (!a) return;
      const t = this.show(a.text, a.done);
      if (t.length > this.consumed.length && t.startsWith(this.consumed)) out.push(i);
    });
    return out;
  }

  get count(): number {
    return this.live().length;
  }

  // Position of the selected alternative among the live ones (1-based), for
  // the status bar's "i/N".
  get ordinal(): number {
    return this.live().indexOf(this.selected) + 1;
  }

  text(index = this.selected): string {
    return this.alternatives[index]?.text ?? '';
  }

  done(index = this.selected): boolean {
    return this.alternatives[index]?.done ?? false;
  }

  // The shown rest of the selected alternative after what was consumed ('' if none).
  remainder(): string {
    const t = this.shown();
    return t.startsWith(this.consumed) ? t.slice(this.consumed.length) : '';
  }

  // Whether the selected alternative is complete: its whole text is shown.
  complete(index = this.selected): boolean {
    return this.done(index) || (this.finished && this.shown(index) === this.text(index));
  }

  acceptArgs(index = this.selected): AcceptArgs {
    return this.alternatives[index]?.accept ?? { requestId: this.requestId, index, source: 'model', partial: true };
  }

  // The writer typed (or accepted) `text` at the cursor. True when it
  // continues a live alternative (switching to it if the selected one does
  // not match): the session goes on. False: the session no longer applies.
  consume(text: string): boolean {
    const next = this.consumed + text;
    const sel = this.alternatives[this.selected];
    if (!(sel && sel.text.startsWith(next))) {
      const other = this.alternatives.findIndex((a) => a && a.text.startsWith(next));
      if (other < 0) return false;
      this.selected = other;
    }
    this.consumed = next;
    return true;
  }

  // Nothing left to show or to come: every alternative was typed through.
  get exhausted(): boolean {
    return this.finished && this.count === 0;
  }

  // Alt+] / Alt+[: moves the selection over the live alternatives.
  cycle(delta: 1 | -1): void {
    const live = this.live();
    if (live.length === 0) return;
    const at = live.indexOf(this.selected);
    this.selected = live[(at + delta + live.length * 2) % live.length] ?? live[0];
  }

  // The alternatives as shown, in the order to hand VS Code: the selected
  // one first (VS Code shows the first item after each re-render, and a
  // re-render resets its own selection), then the others in cycling order.
  ordered(): { index: number; text: string }[] {
    const live = this.live();
    const at = Math.max(0, live.indexOf(this.selected));
    return live.slice(at).concat(live.slice(0, at)).map((index) => ({ index, text: this.shown(index) }));
  }

  private reselect(): void {
    const live = this.live();
    if (live.length > 0 && !live.includes(this.selected)) this.selected = live[0];
  }
}

// Names requests so streamed notifications can be matched to them (the LSP
// library hides JSON-RPC ids): the token is sent as workDoneToken and echoed.
export class SessionStore {
  private byUri = new Map<string, Session>();
  private byToken = new Map<string, Session>();
  private counter = 0;

  constructor(private readonly prefix: string) {}

  // A new session for `uri` (the caller ends the previous one first).
  start(uri: string, anchor: Pos, version: number, show?: (text: string, done: boolean) => string): Session {
    this.drop(uri);
    const s = new Session(uri, anchor, version, `${this.prefix}-${++this.counter}`, show);
    this.byUri.set(uri, s);
    this.byToken.set(s.token, s);
    return s;
  }

  current(uri: string): Session | undefined {
    return this.byUri.get(uri);
  }

  // The live session a notification's token names, if any: notifications of
  // a dropped (stale) session or of another client's request find none.
  forToken(token: unknown): Session | undefined {
    if (typeof token !== 'string') return undefined;
    const s = this.byToken.get(token);
    return s && this.byUri.get(s.uri) === s ? s : undefined;
  }

  drop(uri: string): Session | undefined {
    const s = this.byUri.get(uri);
    if (s) {
      this.byUri.delete(uri);
      this.byToken.delete(s.token);
    }
    return s;
  }

  all(): Session[] {
    return [...this.byUri.values()];
  }
}
