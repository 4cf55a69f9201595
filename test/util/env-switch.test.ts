// The on/off environment switches read one way everywhere: on/off words in any case, unset/empty is the default,
// anything else ERR_CONFIG (exit 3 from the CLI, before the command does any work).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ENV_SWITCHES, envSwitch, type EnvSwitch } from '../../src/util/env-switch.js';
import { probeUserNamespaces } from '../../src/exec/probe.js';
import { genkey } from '../../src/uki/genkey.js';
import { run } from '../helpers/tools.js';

const bin = join(resolve(import.meta.dirname, '..', '..'), 'bin', 'canvos-lite.js');
const names = Object.keys(ENV_SWITCHES) as EnvSwitch[];

/** What `fn` throws (undefined when it returns). */
function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('envSwitch', () => {
  it.each(names)('%s: on words, off words, default when unset or empty, ERR_CONFIG otherwise', (name) => {
    for (const v of ['1', 'true', 'ON', ' yes ', 'Yes']) expect(envSwitch(name, { [name]: v }), v).toBe(true);
    for (const v of ['0', 'false', 'Off', ' no']) expect(envSwitch(name, { [name]: v }), v).toBe(false);
    expect(envSwitch(name, {})).toBe(ENV_SWITCHES[name].default);
    expect(envSwitch(name, { [name]: '  ' })).toBe(ENV_SWITCHES[name].default);
    for (const v of ['maybe', '2', 'enable', 'y']) {
      expect(
        caught(() => envSwitch(name, { [name]: v })),
        v,
      ).toMatchObject({
        code: 'ERR_CONFIG',
        message: `${name}=${JSON.stringify(v)} is not on or off`,
      });
    }
  });
});

describe('where the switches are read', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of names) {
      if (saved[k] === undefined) Reflect.deleteProperty(process.env, k);
      else process.env[k] = saved[k];
    }
    vi.resetModules();
  });

  it('CANVOS_NO_NATIVE=yes picks the JS compressor (it used to count only 1 and true); a typo throws', async () => {
    process.env.CANVOS_NO_NATIVE = 'yes';
    vi.resetModules();
    expect((await import('../../src/native/load.js')).compressor().backend).toBe('js');
    process.env.CANVOS_NO_NATIVE = 'maybe';
    vi.resetModules();
    const load = await import('../../src/native/load.js');
    expect(caught(() => load.compressor())).toMatchObject({ code: 'ERR_CONFIG' });
  });

  it('CANVOS_EXEC_DISABLE_USERNS=on makes the probe fail naming it; a typo throws ERR_CONFIG', async () => {
    process.env.CANVOS_EXEC_DISABLE_USERNS = 'on';
    expect(await probeUserNamespaces()).toMatchObject({
      ok: false,
      reason: 'user namespaces are disabled by CANVOS_EXEC_DISABLE_USERNS=on',
    });
    process.env.CANVOS_EXEC_DISABLE_USERNS = 'disable';
    await expect(probeUserNamespaces()).rejects.toMatchObject({ code: 'ERR_CONFIG' });
  });

  it.each(names)('CLI: %s=maybe fails with exit 3 and a hint before the command does anything', async (name) => {
    const dir = await mkdtemp(join(tmpdir(), 'canvos-switch-'));
    try {
      const src = join(dir, 'missing-layout');
      const out = join(dir, 'out');
      const r = await run(process.execPath, [bin, 'copy', `oci:${src}:v1`, `oci:${out}:v1`], {
        env: { ...process.env, [name]: 'maybe' },
      });
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toContain(`canvos-lite: ${name}="maybe" is not on or off`);
      expect(r.stderr).toMatch(/^hint: set .* or unset it$/m);
      expect(existsSync(out)).toBe(false);
      // The same command with the switch set properly gets past the check and fails on the missing source instead.
      const ok = await run(process.execPath, [bin, 'copy', `oci:${src}:v1`, `oci:${out}:v1`], {
        env: { ...process.env, [name]: 'off' },
      });
      expect(ok.stderr).not.toContain('is not on or off');
      expect(ok.code).not.toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('SOURCE_DATE_EPOCH is read strictly everywhere', () => {
  it('uki genkey (library and CLI) refuses a malformed value instead of silently dating the keys now', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'canvos-sde-'));
    try {
      const keys = join(dir, 'secure-boot');
      await expect(
        genkey({ dir: keys, skipMicrosoft: true, env: { SOURCE_DATE_EPOCH: '2026-12-03' } }),
      ).rejects.toMatchObject({
        code: 'ERR_CONFIG',
        message: 'SOURCE_DATE_EPOCH="2026-12-03" is not a whole number of seconds',
      });
      expect(existsSync(keys)).toBe(false);
      const r = await run(process.execPath, [bin, 'uki', 'genkey', '--skip-microsoft-keys', '--dir', keys], {
        env: { ...process.env, SOURCE_DATE_EPOCH: 'yesterday' },
      });
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toContain('SOURCE_DATE_EPOCH="yesterday" is not a whole number of seconds');
      expect(existsSync(keys)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
