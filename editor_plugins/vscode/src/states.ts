// What the status bar says, and how the client's own start changes it:
// pure, so that plain Node tests it (status.ts renders it in VS Code).

export type State = 'off' | 'starting' | 'loading' | 'ready' | 'writing' | 'error';

// The state once the language client reports it runs. Its report can come
// after the server's own news: the model's "ready", and even a suggestion
// under way (the client sends requests as soon as the server has answered
// `initialize`, before its start() call returns). Those stay; a state from
// before the server ran (starting, off, a crash's error) becomes "loading"
// until the model says it is ready.
export function stateWhenRunning(current: State, enabled: boolean): State {
  if (!enabled) return 'off';
  return current === 'ready' || current === 'writing' || current === 'loading' ? current : 'loading';
}
