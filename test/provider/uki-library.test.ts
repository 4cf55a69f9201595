/**
 * No silent drops at the library boundary: the plain entry points called with IS_UKI=true say that they build the
 * plain artefacts and name the configuration-driven ones (what the CLI runs), before any work.
 */
import { describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgText } from '../../src/provider/arg-file.js';
import { buildProviderImages } from '../../src/provider/build.js';
import { buildInstallerIso } from '../../src/provider/installer-iso.js';

const arg = 'IS_UKI=true\nOS_VERSION=24.04\nBASE_IMAGE=127.0.0.1:9/none/base:1\nPE_VERSION=v4.7.1\n';

describe('IS_UKI through the plain library entry points', () => {
  it('buildProviderImages and buildInstallerIso warn W_UKI_PLAIN_BUILD naming the configured entry point', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'canvos-uki-lib-'));
    try {
      const seen: string[] = [];
      const onWarning = (code: string, msg: string): void => {
        seen.push(`${code} ${msg}`);
      };
      const ac = new AbortController();
      ac.abort();
      const config = parseArgText(arg);
      await expect(
        buildProviderImages(config, {
          versions: ['1.30.4'],
          output: { ociDir: join(dir, 'out') },
          projectDir: dir,
          onWarning,
          signal: ac.signal,
          registry: { timeoutMs: 1000 },
        }),
      ).rejects.toThrow();
      await expect(
        buildInstallerIso(config, { projectDir: dir, outputDir: join(dir, 'iso'), onWarning, signal: ac.signal }),
      ).rejects.toThrow();
      expect(seen[0]).toMatch(/^W_UKI_PLAIN_BUILD .*buildConfiguredProviderImages/);
      expect(seen.some((s) => /^W_UKI_PLAIN_BUILD .*buildConfiguredIso/.test(s))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
