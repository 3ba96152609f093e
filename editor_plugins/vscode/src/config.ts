// The extension's settings (package.json's contributes.configuration is the
// one declaration: this file only reads it).
import * as vscode from 'vscode';

export interface Config {
  enable: boolean;
  serverPath: string;
  serverArgs: string[];
  languages: string[];
  streaming: boolean;
  autoTrigger: boolean;
  idleDelayMs: number;
  renderThrottleMs: number;
  wholeWords: boolean;
  renderMethod: 'hold' | 'hideTrigger' | 'hideThenTrigger';
}

export function readConfig(): Config {
  const c = vscode.workspace.getConfiguration('inkstream');
  return {
    enable: c.get<boolean>('enable', true),
    serverPath: c.get<string>('server.path', 'inkstream') || 'inkstream',
    serverArgs: c.get<string[]>('server.args', []),
    languages: c.get<string[]>('languages', []),
    streaming: c.get<boolean>('streaming', true),
    autoTrigger: c.get<boolean>('autoTrigger', true),
    idleDelayMs: c.get<number>('idleDelayMs', 300),
    renderThrottleMs: c.get<number>('renderThrottleMs', 100),
    wholeWords: c.get<boolean>('wholeWords', true),
    renderMethod: c.get<Config['renderMethod']>('renderMethod', 'hold'),
  };
}

const SERVER_PREFIX = 'inkstream.completion.';

// The server's settings as package.json declares them ("inkstream.completion.<key>").
export function serverSettingKeys(packageJSON: { contributes?: { configuration?: { properties?: object } } }): string[] {
  const props = packageJSON.contributes?.configuration?.properties ?? {};
  return Object.keys(props)
    .filter((k) => k.startsWith(SERVER_PREFIX))
    .map((k) => k.slice(SERVER_PREFIX.length));
}

// The server settings the writer has set (in any scope): only these are sent,
// so the server's own defaults apply to the rest.
export function serverSettings(keys: string[], scope?: vscode.ConfigurationScope): Record<string, unknown> {
  const c = vscode.workspace.getConfiguration('inkstream.completion', scope);
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const i = c.inspect(key);
    const v = i?.workspaceFolderValue ?? i?.workspaceValue ?? i?.globalValue;
    if (v !== undefined && !(typeof v === 'string' && v === '' && (key === 'model' || key === 'models_dir'))) out[key] = v;
  }
  return out;
}

// Whether a configuration change needs a new server process.
export function needsRestart(e: vscode.ConfigurationChangeEvent): boolean {
  return (
    e.affectsConfiguration('inkstream.server') ||
    e.affectsConfiguration('inkstream.languages') ||
    e.affectsConfiguration('inkstream.streaming')
  );
}
