import { describe, expect, it } from 'vitest';
import { startRegistry } from '../helpers/registry.js';
import { run } from '../helpers/tools.js';

// NODE_DEBUG=canvos must show the traffic but never the credentials (Authorization, passwords, tokens).
describe('debug logging', () => {
  it('logs requests without secrets', async () => {
    for (const auth of ['basic', 'bearer'] as const) {
      const reg = await startRegistry({ auth });
      try {
        const res = await run(
          'npx',
          ['vite-node', 'test/registry/debug-child.ts', reg.host, reg.username!, reg.password!],
          {
            env: { ...process.env, NODE_DEBUG: 'canvos' },
            timeoutMs: 60_000,
          },
        );
        expect(res.code, res.stderr).toBe(0);
        const log = res.stderr;
        expect(log).toMatch(/registry PUT http:\/\/127\.0\.0\.1:\d+\/v2\/debug\/a\/blobs\/uploads\/.* -> 201/);
        expect(log).toMatch(/registry GET .*\/blobs\/sha256:.* -> 200/);
        expect(log).not.toContain(reg.password!);
        expect(log).not.toContain(Buffer.from(`${reg.username}:${reg.password}`).toString('base64'));
        expect(log).not.toMatch(/Basic |Bearer ey/);
      } finally {
        await reg.stop();
      }
    }
  });
});
