#!/usr/bin/env node
// Thin shim: the CLI lives in src/cli/main.ts (compiled to dist/).
import { main } from '../dist/cli/main.js';
const ac = new AbortController();
for (const s of ['SIGINT', 'SIGTERM']) process.once(s, () => ac.abort(new Error(`received ${s}`)));
process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd(), signal: ac.signal });
