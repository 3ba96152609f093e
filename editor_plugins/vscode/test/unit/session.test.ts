import assert from 'node:assert/strict';
import { test } from 'node:test';
import { advance, Session, SessionStore } from '../../src/session';

function streamed(): Session {
  const s = new Session('file:///a.md', { line: 2, character: 5 }, 7, 't-1');
  s.update([
    { index: 0, text: ' the sea', done: false },
    { index: 1, text: ' a storm', done: false },
    { index: 2, text: ' the sky', done: false },
  ]);
  return s;
}

test('positions advance over UTF-16 units and every line break kind', () => {
  assert.deepEqual(advance({ line: 0, character: 3 }, 'ab'), { line: 0, character: 5 });
  assert.deepEqual(advance({ line: 0, character: 3 }, 'a\nbc'), { line: 1, character: 2 });
  assert.deepEqual(advance({ line: 0, character: 3 }, 'a\r\nb\rc'), { line: 2, character: 1 });
  assert.deepEqual(advance({ line: 0, character: 0 }, '\u{1F600}'), { line: 0, character: 2 });
});

test('updates replace, only grow, and ignore shrinking text', () => {
  const s = streamed();
  assert.equal(s.update([{ index: 0, text: ' the sea was', done: false }]), true);
  assert.equal(s.text(0), ' the sea was');
  assert.equal(s.update([{ index: 0, text: ' the', done: false }]), false);
  assert.equal(s.update([{ index: 0, text: ' a different', done: false }]), false);
  assert.equal(s.text(0), ' the sea was');
  assert.equal(s.update([{ index: 0, text: ' the sea was', done: false }]), false);
});

test('typing through keeps the rest, switches alternative when needed, and ends on a mismatch', () => {
  const s = streamed();
  assert.equal(s.consume(' '), true);
  assert.equal(s.remainder(), 'the sea');
  assert.deepEqual(s.cursor, { line: 2, character: 6 });
  assert.equal(s.consume('the s'), true);
  assert.equal(s.selected, 0);
  assert.equal(s.remainder(), 'ea');
  // ' the sk' matches only the third alternative
  const t = streamed();
  assert.equal(t.consume(' the sk'), true);
  assert.equal(t.selected, 2);
  assert.equal(t.remainder(), 'y');
  assert.equal(t.consume('x'), false);
  assert.equal(t.consumed, ' the sk');
});

test('cycling visits the live alternatives and the order puts the selected one first', () => {
  const s = streamed();
  assert.deepEqual(s.ordered().map((o) => o.index), [0, 1, 2]);
  s.cycle(1);
  assert.equal(s.selected, 1);
  assert.deepEqual(s.ordered().map((o) => o.index), [1, 2, 0]);
  assert.equal(s.ordinal, 2);
  s.cycle(-1);
  s.cycle(-1);
  assert.equal(s.selected, 2);
  s.consume(' the');
  // ' a storm' no longer continues the text: cycling skips it
  assert.equal(s.count, 2);
  s.cycle(1);
  assert.equal(s.selected, 0);
  s.cycle(1);
  assert.equal(s.selected, 2);
});

test('the final response keeps the alternative being looked at selected', () => {
  const s = streamed();
  s.cycle(1); // ' a storm'
  s.finish([
    { insertText: ' the sea was grey.', accept: { requestId: 4, index: 0, source: 'model' } },
    { insertText: ' a storm came.', accept: { requestId: 4, index: 1, source: 'model' } },
  ]);
  assert.equal(s.selected, 1);
  assert.equal(s.text(), ' a storm came.');
  assert.deepEqual(s.acceptArgs(), { requestId: 4, index: 1, source: 'model' });
  assert.equal(s.finished, true);
});

test('before the response, accept arguments name the streamed request', () => {
  const s = streamed();
  s.requestId = 9;
  assert.deepEqual(s.acceptArgs(), { requestId: 9, index: 0, source: 'model', partial: true });
});

test('an ended request keeps what was streamed; consuming it all exhausts the session', () => {
  const s = streamed();
  s.end();
  assert.equal(s.finished, true);
  assert.equal(s.consume(' the sea'), true);
  assert.equal(s.count, 0); // ' the sea' is used up; the others do not continue it
  assert.deepEqual(s.live(), []);
  assert.equal(s.exhausted, true);
});

test('a display filter decides what is live, shown, cycled and accepted', () => {
  const halfWords = (t: string, done: boolean) => (done ? t : t.slice(0, t.lastIndexOf(' ') + 1).trimEnd());
  const s = new Session('file:///a.md', { line: 0, character: 0 }, 1, 't', halfWords);
  s.update([
    { index: 0, text: ' the sea was', done: false },
    { index: 1, text: ' a', done: false }, // nothing whole yet
    { index: 2, text: ' the sky is', done: false },
  ]);
  assert.deepEqual(s.ordered(), [
    { index: 0, text: ' the sea' },
    { index: 2, text: ' the sky' },
  ]);
  assert.equal(s.count, 2);
  s.cycle(1);
  assert.equal(s.selected, 2); // skips the alternative with nothing shown
  assert.equal(s.ordinal, 2);
  assert.equal(s.remainder(), ' the sky'); // accepting takes what is shown, not ' is'
  assert.equal(s.complete(), false);
  // a request cut short (typing) leaves its alternatives unfinished: still whole words only
  s.end();
  assert.equal(s.remainder(), ' the sky');
  assert.equal(s.complete(), false);
  s.consume(' the sky');
  assert.equal(s.exhausted, true);
  // a finished one is shown whole
  const t = new Session('file:///a.md', { line: 0, character: 0 }, 1, 't', halfWords);
  t.update([{ index: 0, text: ' the sea', done: false }]);
  t.finish([{ insertText: ' the sea was grey.' }]);
  assert.equal(t.remainder(), ' the sea was grey.');
  assert.equal(t.complete(), true);
});

test('tokens correlate notifications with live sessions only', () => {
  const store = new SessionStore('vscode-1');
  const a = store.start('file:///a.md', { line: 0, character: 0 }, 1);
  const b = store.start('file:///b.md', { line: 0, character: 0 }, 1);
  assert.notEqual(a.token, b.token);
  assert.equal(store.forToken(a.token), a);
  assert.equal(store.forToken(b.token), b);
  // a newer request for the same document makes the older one stale
  const a2 = store.start('file:///a.md', { line: 0, character: 3 }, 2);
  assert.equal(store.forToken(a.token), undefined);
  assert.equal(store.forToken(a2.token), a2);
  assert.equal(store.forToken('other-client-1'), undefined);
  assert.equal(store.forToken(42), undefined);
  store.drop('file:///b.md');
  assert.equal(store.forToken(b.token), undefined);
  assert.equal(store.current('file:///b.md'), undefined);
});
