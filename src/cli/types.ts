/**
 * The contract between the CLI entry (main.ts), the command table (command-table.ts) and the command modules: the
 * streams, environment and signal a command runs with, and the shape of a command module. Commands import this
 * module, never main.ts, so there is no import cycle between the entry and the commands.
 */

/** What a command runs with: its output streams (already redacting), environment, working directory and signal. */
export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd: string;
  signal: AbortSignal;
}

/** A command module: `run` returns the exit status. */
export interface CommandModule {
  /** One line, `canvos-lite NAME: what it does` (the list of `canvos-lite --help`). */
  summary: string;
  /** The text of `canvos-lite NAME --help`. */
  usage: string;
  run(argv: string[], io: CliIo): Promise<number>;
}
