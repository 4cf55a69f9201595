#!/usr/bin/env node
// Thin shim: the CLI lives in src/cli/main.ts (compiled to dist/).
import { setFlagsFromString } from 'node:v8';
// undici parses HTTP with llhttp compiled to WebAssembly, which V8 compiles twice: Liftoff, then TurboFan in
// background threads. For a short-lived CLI whose HTTP bodies are bulk bytes the second compile buys nothing and
// costs ~60 ms of CPU and a ~35 MiB peak-RSS spike per run (bench/README.md). Set before any wasm is compiled, so
// before main is imported; library callers keep their own V8 defaults.
setFlagsFromString('--liftoff-only');
const { main } = await import('../dist/cli/main.js');
const ac = new AbortController();
for (const s of ['SIGINT', 'SIGTERM']) process.once(s, () => ac.abort(new Error(`received ${s}`)));
process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd(), signal: ac.signal });
