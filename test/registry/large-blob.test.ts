import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { startRegistry } from '../helpers/registry.js';
import { run, tmpDir } from '../helpers/tools.js';

// 2 GiB through a monolithic upload and a verified streaming download, in a child process so that VmHWM measures
// only the client (not vitest). The child is bundled with esbuild (installed with vitest/vite) and run by plain
// node. CANVOS_LARGE_BLOB_MB shrinks it for quick local runs.
const SIZE = Number(process.env.CANVOS_LARGE_BLOB_MB ?? 2048) * 1024 * 1024;

describe('large blobs', () => {
  it(`streams a ${SIZE / 1024 / 1024} MiB blob up and down with peak RSS < 200 MB`, async () => {
    const tmp = await tmpDir('canvos-large-');
    const reg = await startRegistry({ auth: 'none' });
    try {
      const bundle = join(tmp.path, 'child.cjs');
      const b = await run('npx', [
        'esbuild',
        'test/registry/large-blob-child.ts',
        '--bundle',
        '--platform=node',
        '--format=cjs',
        `--outfile=${bundle}`,
        '--log-level=warning',
      ]);
      expect(b.code, b.stderr).toBe(0);
      const res = await run(process.execPath, [bundle, reg.host, 'large/blob', String(SIZE)], { timeoutMs: 100_000 });
      expect(res.code, res.stderr).toBe(0);
      const out = JSON.parse(res.stdout.trim().split('\n').pop() ?? '') as {
        result: string;
        read: number;
        vmhwm: number;
      };
      expect(out.result).toBe('uploaded');
      expect(out.read).toBe(SIZE);
      expect(out.vmhwm, JSON.stringify(out)).toBeLessThan(200 * 1024 * 1024);
    } finally {
      await reg.stop();
      await tmp.cleanup();
    }
  }, 120_000);
});
