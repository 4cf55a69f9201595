/**
 * CLI entry: dispatches `canvos-lite <command>` to src/cli/commands/<command>.ts, maps errors to exit codes.
 * Errors print as one line (`canvos-lite: <message>` plus `hint:`), with a stack only under --debug.
 */
import { CanvosError } from '../errors.js';
import { VERSION } from '../version.js';

/** A command module: `run` returns the exit status. */
export interface CommandModule {
  summary: string;
  usage: string;
  run(argv: string[], io: CliIo): Promise<number>;
}

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd: string;
  signal: AbortSignal;
}

const COMMANDS: Record<string, () => Promise<CommandModule>> = {
  copy: async () => (await import('./commands/copy.js')).default,
  mirror: async () => (await import('./commands/mirror.js')).default,
  build: async () => (await import('./commands/build.js')).default,
  iso: async () => (await import('./commands/iso.js')).default,
  'build-all': async () => (await import('./commands/build-all.js')).default,
  uki: async () => (await import('./commands/uki.js')).default,
};

async function help(): Promise<string> {
  const rows = await Promise.all(
    Object.entries(COMMANDS).map(async ([name, load]) => {
      const summary = (await load()).summary.replace(/^canvos-lite \S+: /, '');
      return `  ${name.padEnd(9)} ${summary}`;
    }),
  );
  return [
    `canvos-lite ${VERSION}: daemonless builder of Palette Edge / Kairos provider images and installer ISOs`,
    '',
    'usage: canvos-lite <command> [options]   (canvos-lite <command> --help for details)',
    '',
    'commands:',
    ...rows,
    '',
    'global options: --debug (stack traces), --version',
  ].join('\n');
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  const debug = argv.includes('--debug');
  const args = argv.filter((a) => a !== '--debug');
  const cmd = args[0];
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    io.stdout.write((await help()) + '\n');
    return cmd ? 0 : 2;
  }
  if (cmd === '--version' || cmd === 'version') {
    io.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const load = COMMANDS[cmd];
  if (!load) {
    io.stderr.write(`canvos-lite: unknown command ${JSON.stringify(cmd)}\nhint: run canvos-lite --help for the list of commands\n`);
    return 2;
  }
  try {
    const mod = await load();
    if (args.includes('--help') || args.includes('-h')) {
      io.stdout.write(`${mod.summary}\n\n${mod.usage}\n`);
      return 0;
    }
    return await mod.run(args.slice(1), io);
  } catch (e) {
    return reportError(e, io, debug);
  }
}

/** Print an error as one line (plus hint) and return its exit code. */
export function reportError(e: unknown, io: CliIo, debug: boolean): number {
  if (CanvosError.is(e)) {
    io.stderr.write(`canvos-lite: ${oneLine(e.message)}\n`);
    if (e.hint) io.stderr.write(`hint: ${oneLine(e.hint)}\n`);
    if (debug && e.stack) io.stderr.write(`${e.stack}\n`);
    return e.exitCode;
  }
  const err = e as Error;
  if (err?.name === 'TypeError' && /parseArgs|ERR_PARSE_ARGS/.test(String((err as { code?: string }).code))) {
    io.stderr.write(`canvos-lite: ${oneLine(err.message)}\nhint: run with --help for the options\n`);
    return 2;
  }
  io.stderr.write(`canvos-lite: internal error: ${oneLine(err?.message ?? String(e))}\n`);
  if (debug && err?.stack) io.stderr.write(`${err.stack}\n`);
  return 1;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}
