import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nextLine, nextWord, wholeWords } from '../../src/prose';

test('accept word takes the word with its leading space, in one press', () => {
  assert.equal(nextWord(' the quick brown'), ' the');
  assert.equal(nextWord('the quick'), 'the');
  assert.equal(nextWord(' sea, and'), ' sea,');
  assert.equal(nextWord('  spaced'), '  spaced');
  assert.equal(nextWord(' "quoted" word'), ' "quoted"');
});

test('accept word at a line break takes the break and the indentation', () => {
  assert.equal(nextWord('\n  next line'), '\n  ');
  assert.equal(nextWord('\r\nnext'), '\r\n');
  assert.equal(nextWord('\rnext'), '\r');
  assert.equal(nextWord(' \n'), ' \n'.slice(0, 1));
  assert.equal(nextWord(''), '');
});

test('accept line takes the rest of the line, or the next line after a break', () => {
  assert.equal(nextLine(' and so on.\nNext line.'), ' and so on.');
  assert.equal(nextLine('\nNext line.\nThird'), '\nNext line.');
  assert.equal(nextLine('\r\nWindows\r\nline'), '\r\nWindows');
  assert.equal(nextLine(' no break'), ' no break');
  assert.equal(nextLine('\n'), '\n');
});

test('a growing suggestion shows whole words; a finished one shows everything', () => {
  assert.equal(wholeWords(' and the sea', false), ' and the');
  assert.equal(wholeWords(' and the sea,', false), ' and the sea,');
  assert.equal(wholeWords(' and the sea ', false), ' and the sea');
  assert.equal(wholeWords(' sea', false), '');
  assert.equal(wholeWords(' sea', true), ' sea');
  assert.equal(wholeWords('', false), '');
  assert.equal(wholeWords(' one.\n Two', false), ' one.');
  // Each shown prefix is a prefix of the next and of the final text.
  const final = ' The rain fell, and the sea was grey.';
  let last = '';
  for (let i = 1; i <= final.length; i++) {
    const shown = wholeWords(final.slice(0, i), i === final.length);
    assert.ok(shown.startsWith(last), `${JSON.stringify(shown)} does not extend ${JSON.stringify(last)}`);
    assert.ok(final.startsWith(shown));
    last = shown;
  }
  assert.equal(last, final);
});
