// inkstream for VS Code: streamed prose suggestions from `inkstream lsp`.
import * as vscode from 'vscode';
import { needsRestart, readConfig, serverSettingKeys } from './config';
import { Controller } from './controller';
import { InkstreamServer } from './server';
import { StatusItem } from './status';
import { stateWhenRunning } from './states';

let server: InkstreamServer | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  let config = readConfig();
  const output = vscode.window.createOutputChannel('inkstream', { log: true });
  const status = new StatusItem();
  let controller: Controller | undefined = undefined;
  server = new InkstreamServer(
    output,
    serverSettingKeys(context.extension.packageJSON),
    {
      // The client library registers a provider for the server's capability
      // and drops it whenever the server stops; ours (below) outlives
      // restarts, so that the next suggestion after a crash can restart it.
      // The library's one stays silent.
      middleware: { provideInlineCompletionItems: () => null },
      onPartial: (p) => controller?.onPartial(p),
      onStatus: (p) => controller?.onStatus(p),
      onStateChange: (running, crashed, why) => {
        if (!running) controller?.serverStopped();
        if (crashed) status.show('error', why ?? 'the server stopped');
        else if (!running) status.show('off');
        else {
          const next = stateWhenRunning(status.state, config.enable);
          if (next !== status.state) status.show(next);
        }
      },
    },
    config,
  );
  const srv = server;
  controller = new Controller(config, () => srv.ready(), status, output);
  const ctl = controller;

  let provider: vscode.Disposable | undefined;
  const registerProvider = () => {
    provider?.dispose();
    provider = vscode.languages.registerInlineCompletionItemProvider(
      config.languages.map((language) => ({ language })),
      { provideInlineCompletionItems: (document, position, ctx, token) => ctl.provide(document, position, ctx, token) },
    );
  };
  registerProvider();
  context.subscriptions.push({ dispose: () => provider?.dispose() });

  const command = (id: string, fn: () => unknown) => context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  command('inkstream.acceptAll', () => ctl.acceptAll());
  command('inkstream.acceptWord', () => ctl.acceptWord());
  command('inkstream.acceptLine', () => ctl.acceptLine());
  command('inkstream.next', () => ctl.cycle(1));
  command('inkstream.previous', () => ctl.cycle(-1));
  command('inkstream.dismiss', () => ctl.dismiss());
  command('inkstream.trigger', () => ctl.trigger());
  command('inkstream.toggle', () => {
    // Where it is set (a workspace value would win over a global one).
    const c = vscode.workspace.getConfiguration('inkstream');
    const target = c.inspect('enable')?.workspaceValue !== undefined ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
    return c.update('enable', !config.enable, target);
  });
  command('inkstream.restart', () => srv.restart(config));
  command('inkstream.showOutput', () => output.show(true));
  command('inkstream.openSettings', () => vscode.commands.executeCommand('workbench.action.openSettings', '@ext:inkstream.inkstream'));
  command('inkstream.menu', async () => {
    const picks: (vscode.QuickPickItem & { run: () => unknown })[] = [
      { label: config.enable ? '$(circle-slash) Turn suggestions off' : '$(pencil) Turn suggestions on', run: () => vscode.commands.executeCommand('inkstream.toggle') },
      { label: '$(debug-restart) Restart the server', run: () => srv.restart(config) },
      { label: '$(output) Show the server output', run: () => output.show(true) },
      { label: '$(settings-gear) Open settings', run: () => vscode.commands.executeCommand('inkstream.openSettings') },
    ];
    const chosen = await vscode.window.showQuickPick(picks, { title: 'inkstream' });
    await chosen?.run();
  });

  context.subscriptions.push(
    output,
    status,
    controller,
    server,
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (!e.affectsConfiguration('inkstream')) return;
      config = readConfig();
      output.info(`settings changed${needsRestart(e) ? ' (restarting the server)' : ''}`);
      ctl.setConfig(config);
      if (e.affectsConfiguration('inkstream.languages')) {
        registerProvider();
        void languagesContext();
      }
      if (needsRestart(e)) await srv.restart(config);
      else if (e.affectsConfiguration('inkstream.completion')) await srv.settingsChanged(config);
      if (e.affectsConfiguration('inkstream.enable')) status.show(config.enable ? (srv.running ? 'ready' : 'off') : 'off');
    }),
  );
  const languagesContext = () => vscode.commands.executeCommand('setContext', 'inkstream.languages', config.languages);
  void languagesContext();
  if (config.enable) await srv.start();
  else status.show('off');
}

export async function deactivate(): Promise<void> {
  await server?.stop();
}
