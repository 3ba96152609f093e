import assert from 'node:assert/strict';
import { test } from 'node:test';
// @ts-expect-error plain JavaScript module of the e2e harness
import { analyse } from '../e2e/flicker.mjs';

const s = (...texts: string[]) => texts.map((text, t) => ({ t, text }));

test('a clean stream: every update grows, no flicker', () => {
  const a = analyse(s('', ' the', ' the sea', ' the sea was grey.'));
  assert.deepEqual(a.snapshots, [' the', ' the sea', ' the sea was grey.']);
  assert.equal(a.flickers, 0);
});

test('blank and shorter frames between updates are flickers; clearing after the end is not', () => {
  const a = analyse(s('', ' the', '', ' the sea', ' the', ' the sea was', ''));
  assert.equal(a.updates, 3);
  assert.equal(a.flickers, 2);
});

test('a frame missing the first line counts as a flicker, not as growth', () => {
  const a = analyse(s(' the', ' the sea\nand', '\nand more', ' the sea\nand more'));
  assert.deepEqual(a.snapshots, [' the', ' the sea\nand', ' the sea\nand more']);
  assert.equal(a.flickers, 1);
});

test('a text that replaces the shown one for a while is flicker, not an update', () => {
  const a = analyse(s(' the sea', ' a storm came', ' a storm came, and', ' the sea was'));
  assert.deepEqual(a.snapshots, [' the sea', ' the sea was']);
  assert.equal(a.flickers, 2);
});
