/**
 * What the CLI loads at start-up: Node internals a command does not use stay out (child_process and dgram: only when
 * a tool or credential helper runs; tls: undici loads it for its first https connection; http2: never negotiated,
 * left out of the bundle by scripts/bundle.mjs; vm: only for the GC pacer, which --version does not start).
 */
import { describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runsCommand } from '../../src/cli/main.js';
import { run, tmpDir } from '../helpers/tools.js';

const root = resolve(import.meta.dirname, '..', '..');
const bin = join(root, 'bin', 'canvos-lite.js');
const mtime = (rel: string): number => statSync(join(root, rel), { throwIfNoEntry: false })?.mtimeMs ?? -1;
// bin/canvos-lite.js runs the bundle when it is at least as new as the tsc output (else the plain dist/ modules).
const bundled = mtime('dist/bundle/main.mjs') >= mtime('dist/cli/main.js');

/** The Node internals (`NativeModule x` entries) loaded by the time `canvos-lite ...args` exits. */
async function internals(args: string[]): Promise<{ code: number; mods: Set<string>; stderr: string }> {
  const tmp = await tmpDir('canvos-startup-');
  try {
    const hook = `process.on('exit', () => process.stderr.write('MODS ' + JSON.stringify(process.moduleLoadList) + '\\n'));`;
    const r = await run(
      process.execPath,
      ['--import', `data:text/javascript,${encodeURIComponent(hook)}`, bin, ...args],
      {
        env: { PATH: process.env.PATH, HOME: tmp.path },
        cwd: tmp.path,
      },
    );
    const line = r.stderr.split('\n').find((l) => l.startsWith('MODS ')) ?? 'MODS []';
    const list = JSON.parse(line.slice(5)) as string[];
    const mods = new Set(list.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)));
    return { code: r.code, mods, stderr: r.stderr };
  } finally {
    await tmp.cleanup();
  }
}

describe('CLI start-up', () => {
  it('runsCommand: only a known command without --help starts the GC pacer', () => {
    expect(runsCommand(['copy', 'a', 'b'])).toBe(true);
    expect(runsCommand(['--debug', 'mirror', 'push'])).toBe(true);
    expect(runsCommand(['--version'])).toBe(false);
    expect(runsCommand([])).toBe(false);
    expect(runsCommand(['copy', '--help'])).toBe(false);
    expect(runsCommand(['iso', '-h'])).toBe(false);
    expect(runsCommand(['nope'])).toBe(false);
    expect(runsCommand(['toString'])).toBe(false);
  });

  it('a command runs in no AsyncLocalStorage scope (its promise hooks would tax every promise)', async () => {
    // The hook counts AsyncLocalStorage runs and enterWith calls of the whole process.
    const hook = [
      `import { AsyncLocalStorage } from 'node:async_hooks';`,
      `let n = 0;`,
      `for (const m of ['run', 'enterWith']) { const f = AsyncLocalStorage.prototype[m];`,
      `  AsyncLocalStorage.prototype[m] = function (...a) { n++; return f.apply(this, a); }; }`,
      `process.on('exit', () => process.stderr.write('ALS ' + n + '\\n'));`,
    ].join('\n');
    const tmp = await tmpDir('canvos-startup-');
    try {
      const r = await run(
        process.execPath,
        [
          '--import',
          `data:text/javascript,${encodeURIComponent(hook)}`,
          bin,
          'copy',
          '--timeout',
          '5',
          'oci:/nonexistent-canvos-layout:v1',
          'oci:/tmp/never-written:v1',
        ],
        { env: { PATH: process.env.PATH, HOME: tmp.path }, cwd: tmp.path },
      );
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toContain('ALS 0');
    } finally {
      await tmp.cleanup();
    }
  });

  it('--version loads no vm (no GC pacer), child_process, tls or http2', async () => {
    const r = await internals(['--version']);
    expect(r.code, r.stderr).toBe(0);
    for (const m of ['vm', 'child_process', 'dgram', 'tls', 'http2']) expect(r.mods.has(m), m).toBe(false);
  });

  it('copy loads undici (net, http) but no child_process, dgram, tls or http2 (bundle)', async () => {
    // A copy whose source does not exist: the command and all its modules load, then it fails before any request.
    const r = await internals(['copy', 'oci:/nonexistent-canvos-layout:v1', 'oci:/tmp/never-written:v1']);
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.mods.has('net')).toBe(true);
    expect(r.mods.has('vm')).toBe(true);
    for (const m of ['child_process', 'dgram', 'tls']) expect(r.mods.has(m), m).toBe(false);
    if (bundled) expect(r.mods.has('http2')).toBe(false);
  });
});
