// The README's demo command (`npm run demo` = tsc + scripts/demo.mjs) must keep working: run the script against the
// compiled library and check its output with independent readers (skopeo, umoci).
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { run, skopeo, tmpDir, umoci } from './helpers/tools.js';

const root = join(import.meta.dirname, '..');

describe('demo', () => {
  it('builds three k3s provider images offline, reproducibly', async () => {
    const first = await run(process.execPath, [join(root, 'scripts/demo.mjs')], { cwd: root, timeoutMs: 300_000 });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('system.customTag: demo');
    const layout = join(root, 'build/provider-images');
    const digests: string[] = [];
    for (const v of ['1.29.8', '1.30.4', '1.31.2']) {
      const info = JSON.parse(await skopeo(['inspect', `oci:${layout}:k3s-${v}-v4.9.38-demo`])) as {
        Digest: string;
        Architecture: string;
      };
      expect(info.Architecture).toBe('amd64');
      digests.push(info.Digest);
    }
    const tmp = await tmpDir('canvos-demo-');
    try {
      await umoci(['unpack', '--rootless', '--image', `${layout}:k3s-1.30.4-v4.9.38-demo`, join(tmp.path, 'b')]);
      const rootfs = join(tmp.path, 'b', 'rootfs');
      expect(await readFile(join(rootfs, 'usr/bin/k3s'), 'utf8')).toContain('v1.30.4+k3s1');
      expect(existsSync(join(rootfs, 'system/providers/agent-provider-k3s'))).toBe(true);
      expect(existsSync(join(rootfs, 'usr/local/system/providers'))).toBe(false);
      expect(existsSync(join(rootfs, 'etc/ssh/ssh_host_rsa_key'))).toBe(false);
      expect(await readFile(join(rootfs, 'etc/machine-id'), 'utf8')).toBe('');
    } finally {
      await tmp.cleanup();
    }
    const second = await run(process.execPath, [join(root, 'scripts/demo.mjs')], { cwd: root, timeoutMs: 300_000 });
    expect(second.code).toBe(0);
    for (const [i, v] of ['1.29.8', '1.30.4', '1.31.2'].entries()) {
      const info = JSON.parse(await skopeo(['inspect', `oci:${layout}:k3s-${v}-v4.9.38-demo`])) as { Digest: string };
      expect(info.Digest).toBe(digests[i]);
    }
    await rm(join(root, 'build/demo'), { recursive: true, force: true });
  });
});
