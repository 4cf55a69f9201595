#!/usr/bin/env node
// Thin shim: the CLI lives in src/cli/main.ts (compiled to dist/).
import { setFlagsFromString } from 'node:v8';
// undici parses HTTP with llhttp compiled to WebAssembly, which V8 compiles twice: Liftoff, then TurboFan in
// background threads. For a short-lived CLI whose HTTP bodies are bulk bytes the second compile buys nothing and
// costs ~60 ms of CPU and a ~35 MiB peak-RSS spike per run (bench/README.md). Set before any wasm is compiled, so
// before main is imported; library callers keep their own V8 defaults.
setFlagsFromString('--liftoff-only');
// Installed first, so a signal while the CLI loads is handled too. SIGINT/SIGTERM abort the command, whose cleanup (temp dirs, half-built destinations, child processes) runs as the
// abort unwinds; the process ends with 130/143 at the latest 1.5 s later, or at once on a second signal.
const ac = new AbortController();
let signalExit = 0;
for (const [s, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
]) {
  process.on(s, () => {
    if (signalExit) process.exit(signalExit);
    signalExit = code;
    ac.abort(new Error(`received ${s}`));
    setTimeout(() => process.exit(code), 1500);
  });
}
// dist/bundle (scripts/bundle.mjs, part of `npm run build`) loads in a few modules instead of ~180; it is used only
// when at least as new as the tsc output it was made from, so a plain `tsc` is never served a stale bundle.
const { statSync } = await import('node:fs');
const mtime = (rel) => statSync(new URL(rel, import.meta.url), { throwIfNoEntry: false })?.mtimeMs ?? -1;
const bundled = mtime('../dist/bundle/main.mjs') >= mtime('../dist/cli/main.js');
const { main, runsCommand, startGcPacer } = await import(bundled ? '../dist/bundle/main.mjs' : '../dist/cli/main.js');
// Dead stream chunks are collected as they pile up instead of after ~32 MiB (src/cli/gc-pacer.ts); CLI only, and only
// for a command that runs (--version and --help stream nothing).
if (runsCommand(process.argv.slice(2))) startGcPacer();
const code = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  signal: ac.signal,
});
process.exitCode = signalExit || code;
// After an interrupt nothing is left worth waiting for (a socket being torn down, a killed child): exit now.
if (signalExit) process.exit(signalExit);
