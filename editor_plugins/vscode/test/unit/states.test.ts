import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stateWhenRunning } from '../../src/states';

test('the client reporting it runs keeps what the server already said', () => {
  // (the model's "ready", or a suggestion under way, can come first)
  assert.equal(stateWhenRunning('ready', true), 'ready');
  assert.equal(stateWhenRunning('writing', true), 'writing');
  assert.equal(stateWhenRunning('loading', true), 'loading');
});

test('before the server ran, the client running means the model is loading', () => {
  assert.equal(stateWhenRunning('starting', true), 'loading');
  assert.equal(stateWhenRunning('off', true), 'loading'); // a restart
  assert.equal(stateWhenRunning('error', true), 'loading'); // restarted after a crash
});

test('turned off stays off', () => {
  for (const s of ['starting', 'ready', 'writing', 'error'] as const) assert.equal(stateWhenRunning(s, false), 'off');
});
