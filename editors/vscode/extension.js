// The resdsl extension's client: starts `resdsl lsp` (the command is the `resdsl.server.command`
// setting) over stdio for .rd files, and restarts it when the setting changes.
"use strict";

const path = require("path");
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function serverOptions() {
  const config = vscode.workspace.getConfiguration("resdsl");
  let command = config.get("server.command", "resdsl");
  const folder = vscode.workspace.workspaceFolders && vscode.workspace.workspaceFolders[0];
  if (folder && !path.isAbsolute(command) && /[\\/]/.test(command)) {
    command = path.join(folder.uri.fsPath, command); // a relative path: from the workspace folder
  }
  return { command, args: config.get("server.args", ["lsp"]), transport: TransportKind.stdio };
}

async function start(context) {
  client = new LanguageClient(
    "resdsl",
    "resdsl language server",
    serverOptions(),
    {
      documentSelector: [{ scheme: "file", language: "resdsl" }, { scheme: "untitled", language: "resdsl" }],
      synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.rd") },
    },
  );
  try {
    await client.start();
  } catch (err) {
    vscode.window.showErrorMessage(
      `resdsl: cannot start \`${serverOptions().command} lsp\` (${err.message || err}); ` +
        "set resdsl.server.command to the resdsl executable, e.g. .venv/bin/resdsl",
    );
  }
}

async function restart(context) {
  if (client) {
    await client.stop().catch(() => undefined);
  }
  await start(context);
}

async function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand("resdsl.restartServer", () => restart(context)),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration("resdsl.server")) {
        restart(context);
      }
    }),
  );
  await start(context);
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
