/**
 * CLI entry: dispatches `canvos-lite <command>` through the command table (command-table.ts), maps errors to exit codes.
 * Errors print as one line (`canvos-lite: <message>` plus `hint:`), with a stack only under --debug.
 */
import { CanvosError, redactText } from '../errors.js';
import { toCanvosError } from '../error-map.js';
import { VERSION } from '../version.js';
import { throwIfAborted } from '../util/abort.js';
import { resetToolTimeouts } from '../util/run-tool.js';
import { checkEnvironment } from '../util/env-switch.js';
import { COMMANDS } from './command-table.js';
import type { CliIo } from './types.js';

export type { CliIo, CommandModule } from './types.js';
export { startGcPacer } from './gc-pacer.js';

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

/**
 * `stream` with every string written through redactText: the one redaction path for everything the CLI prints
 * (messages, warnings, progress, --json, dry-run plans), so userinfo, tokens and signed-URL values never reach a
 * terminal or a log. Other properties (isTTY, columns, on…) are the stream's own.
 */
export function redactingStream<T extends NodeJS.WritableStream>(stream: T): T {
  const write = (chunk: unknown, ...rest: unknown[]): boolean =>
    (stream.write as (c: unknown, ...r: unknown[]) => boolean)(
      typeof chunk === 'string' ? redactText(chunk) : chunk,
      ...rest,
    );
  return new Proxy(stream, {
    get(target, prop) {
      if (prop === 'write') return write;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/**
 * True when `argv` runs a command (not `--version`, `--help`, a command's `--help` or an unknown name): the CLI shim
 * starts the GC pacer (gc-pacer.ts) only then, since only commands stream blobs.
 */
export function runsCommand(argv: readonly string[]): boolean {
  const args = argv.filter((a) => a !== '--debug');
  const cmd = args[0];
  return cmd !== undefined && Object.hasOwn(COMMANDS, cmd) && !args.includes('--help') && !args.includes('-h');
}

export async function main(argv: string[], ioIn: CliIo): Promise<number> {
  const io: CliIo = { ...ioIn, stdout: redactingStream(ioIn.stdout), stderr: redactingStream(ioIn.stderr) };
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
    io.stderr.write(
      `canvos-lite: unknown command ${JSON.stringify(cmd)}\nhint: run canvos-lite --help for the list of commands\n`,
    );
    return 2;
  }
  try {
    const mod = await load();
    if (args.includes('--help') || args.includes('-h')) {
      io.stdout.write(`${mod.summary}\n\n${mod.usage}\n`);
      return 0;
    }
    throwIfAborted(io.signal);
    checkEnvironment(io.env); // a mistyped CANVOS_NO_NATIVE, SOURCE_DATE_EPOCH… fails here, before any work (exit 3)
    // --timeout (parseTimeout → setToolTimeouts) also bounds the tools the command spawns: kept per process, not in
    // a withToolTimeouts scope, whose AsyncLocalStorage would tax every promise of the command (run-tool.ts).
    resetToolTimeouts();
    return await mod.run(args.slice(1), io);
  } catch (e) {
    return reportError(e, io, debug);
  }
}

/** Print an error as one line (plus hint) and return its exit code. */
export function reportError(e: unknown, io: CliIo, debug: boolean): number {
  const err = e as Error | undefined;
  if (err?.name === 'TypeError' && /parseArgs|ERR_PARSE_ARGS/.test(String((err as { code?: string }).code))) {
    io.stderr.write(`canvos-lite: ${oneLine(err.message)}\nhint: run with --help for the options\n`);
    return 2;
  }
  // Errno, zlib and stray network errors get their documented code (src/error-map.ts); exit 1 is left for bugs.
  const ce = io.signal.aborted ? abortedError(io.signal, e) : toCanvosError(e);
  if (ce) {
    io.stderr.write(`canvos-lite: ${oneLine(ce.message)}\n`);
    if (ce.hint) io.stderr.write(`hint: ${oneLine(ce.hint)}\n`);
    if (debug && ce.stack) io.stderr.write(`${redactText(ce.stack)}\n`);
    if (debug && ce !== e && err?.stack) io.stderr.write(`${redactText(err.stack)}\n`);
    return ce.exitCode;
  }
  io.stderr.write(`canvos-lite: internal error: ${oneLine(err?.message ?? String(e))}\n`);
  if (debug && err?.stack) io.stderr.write(`${redactText(err.stack)}\n`);
  return 1;
}

/** An interrupted command: exit 130 (the CLI shim turns SIGTERM into 143). */
function abortedError(signal: AbortSignal, e: unknown): CanvosError {
  const why = signal.reason instanceof Error ? signal.reason.message : 'interrupted';
  return new CanvosError('ERR_ABORTED', `interrupted (${why})`, { cause: e });
}

/** Longest message line printed; a longer one (an echoed 50 MB value) is cut. */
const MAX_LINE = 600;

/** One line, secrets masked (redactText), cut to MAX_LINE characters. */
function oneLine(s: string): string {
  const line = redactText(s.replace(/\s*\n\s*/g, ' ').trim());
  return line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}… (${line.length - MAX_LINE} more characters)` : line;
}
