// The status bar item: what inkstream is doing, with a menu behind it.
import * as vscode from 'vscode';

import type { State } from './states';

export interface Figures {
  model?: string;
  latencyMs?: number;
  tokensPerSecond?: number;
  cacheHitRate?: number;
}

export class StatusItem implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  state: State = 'starting';
  private figures: Figures = {};
  private detail = '';

  constructor() {
    // id "status": its DOM id is "inkstream.inkstream.status"
    this.item = vscode.window.createStatusBarItem('status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'inkstream';
    this.item.command = 'inkstream.menu';
    this.show('starting');
    this.item.show();
  }

  // `alternative` is "i/N" while a suggestion is shown.
  show(state: State, detail = '', alternative = ''): void {
    this.state = state;
    this.detail = detail;
    const icon = {
      off: '$(circle-slash)',
      starting: '$(sync~spin)',
      loading: '$(sync~spin)',
      ready: '$(pencil)',
      writing: '$(loading~spin)',
      error: '$(error)',
    }[state];
    const word = {
      off: 'off',
      starting: 'starting',
      loading: 'loading model',
      ready: 'ready',
      writing: 'writing',
      error: 'error',
    }[state];
    const alt = alternative ? ` (${alternative})` : '';
    this.item.text = `${icon} inkstream${state === 'ready' && !alt ? '' : ': ' + word}${alt}`;
    this.item.accessibilityInformation = { label: `inkstream ${word}${alt}` };
    this.item.backgroundColor = state === 'error' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
    this.refreshTooltip();
  }

  setFigures(f: Figures): void {
    this.figures = { ...this.figures, ...f };
    this.refreshTooltip();
  }

  private refreshTooltip(): void {
    const lines = [`inkstream: ${this.state}${this.detail ? ' — ' + this.detail : ''}`];
    if (this.figures.model) lines.push(`model: ${this.figures.model}`);
    if (this.figures.latencyMs !== undefined) lines.push(`last suggestion: ${Math.round(this.figures.latencyMs)} ms`);
    if (this.figures.tokensPerSecond) lines.push(`speed: ${this.figures.tokensPerSecond.toFixed(1)} tokens/s`);
    if (this.figures.cacheHitRate !== undefined) lines.push(`prompt cache hit rate: ${(this.figures.cacheHitRate * 100).toFixed(0)}%`);
    lines.push('', 'Click for the menu');
    this.item.tooltip = lines.join('\n');
  }

  dispose(): void {
    this.item.dispose();
  }
}
