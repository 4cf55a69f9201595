// The shared flag sets (src/cli/flag-sets.ts): every network command takes --timeout and checks it the same way,
// the one-registry set checks --authfile before any work, and --base refuses the configuration flags.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tools.js';

let tmp: Awaited<ReturnType<typeof tmpDir>>;
const cli = (...args: string[]) => runCli(args, { env: { HOME: tmp.path, PATH: process.env.PATH }, cwd: tmp.path });

beforeAll(async () => {
  tmp = await tmpDir('canvos-flag-sets-');
});
afterAll(async () => {
  await tmp.cleanup();
});

describe('shared CLI flag sets', () => {
  it.each([
    ['copy', ['oci:a', 'oci:b']],
    ['mirror', ['plan', 'quay.io/x/y:1']],
    ['pull-artifact', ['oci:a', 'out']],
    ['disk', ['--base', 'oci:a']],
    ['iso', ['--base', 'oci:a']],
    ['uki', ['iso', '--base', 'oci:a']],
    ['uki', ['provider', '--provider', 'oci:a', '--carrier', 'oci:b', '--to', 'oci:c']],
  ])('%s %j: --timeout is accepted and checked (exit 2 before any work)', async (cmd, args) => {
    const r = await cli(cmd, ...args, '--timeout', '0');
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('--timeout must be a number of seconds from 1 to 3600, not "0"');
    // uki's subcommands name themselves in the hint (`run canvos-lite uki iso --help`)
    expect(r.stderr).toContain(`hint: run canvos-lite ${cmd === 'uki' && args[0] === 'iso' ? 'uki iso' : cmd} --help`);
  });

  it('every network command documents --timeout in its --help', async () => {
    for (const cmd of ['copy', 'mirror', 'build', 'iso', 'disk', 'pull-artifact', 'build-all', 'uki']) {
      const r = await cli(cmd, '--help');
      expect(r.code).toBe(0);
      expect(r.stdout, cmd).toMatch(/--timeout SECONDS +network timeout/);
    }
  });

  it('pull-artifact checks --authfile before any work; --base refuses configuration flags but takes --timeout', async () => {
    const auth = await cli('pull-artifact', '--authfile', 'missing.json', 'oci:a', 'out');
    expect(auth.code).toBe(2);
    expect(auth.stderr).toContain('--authfile missing.json does not exist');
    const iso = await cli('iso', '--base', 'oci:a', '--timeout', '5', '--set', 'ISO_NAME=x');
    expect(iso.code).toBe(2);
    expect(iso.stderr).toContain('--set does not apply with --base');
  });

  it('--json is one flag definition: an unknown spelling is a parse error naming --help', async () => {
    const r = await cli('pull-artifact', '--jsn', 'oci:a', 'out');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Unknown option '--jsn'[\s\S]*hint: run with --help/);
  });
});
