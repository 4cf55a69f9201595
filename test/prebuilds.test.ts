// The committed prebuilt addons (native/prebuilds, made by scripts/prebuild.sh): what node-gyp-build loads on
// linux-x64/arm64 whether or not npm ran the install script, so every install compresses alike.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { run, tmpDir } from './helpers/tools.js';

const root = join(import.meta.dirname, '..');
const prebuild = (arch: string) => join(root, 'native/prebuilds', `linux-${arch}`, 'node.napi.glibc.node');
const buildInfo = (arch: string) =>
  new Map(
    readFileSync(join(root, 'native/prebuilds', `linux-${arch}`, 'BUILDINFO'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' ') as [string, string]),
  );
const installed = (pkg: string) => {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    return undefined;
  }
};
const check = (addon: string) =>
  execFileSync(process.execPath, [join(root, 'scripts/prebuild-check.cjs'), addon], { encoding: 'utf8' });

describe.each([
  ['x64', 'x86-64'],
  ['arm64', 'ARM aarch64'],
])('prebuild linux-%s', (arch, machine) => {
  it('is a stripped shared object for its machine, with libdeflate and libzstd linked in, as BUILDINFO records', () => {
    const file = prebuild(arch);
    expect(execFileSync('file', ['-b', file], { encoding: 'utf8' })).toMatch(
      new RegExp(`^ELF 64-bit LSB shared object, ${machine}.*stripped`),
    );
    const needed = [
      ...execFileSync('readelf', ['-d', file], { encoding: 'utf8' }).matchAll(/\(NEEDED\).*\[(.+)\]/g),
    ].map((m) => m[1]);
    expect(needed.length).toBeGreaterThan(0);
    for (const lib of needed)
      expect(lib).toMatch(/^(libc\.so\.6|libstdc\+\+\.so\.6|libgcc_s\.so\.1|libm\.so\.6|ld-linux-aarch64\.so\.1)$/);
    expect(createHash('sha256').update(readFileSync(file)).digest('hex')).toBe(buildInfo(arch).get('sha256'));
    expect(readFileSync(file).length).toBeLessThan(1 << 20);
  });
});

describe('prebuild linux-x64 on this machine', () => {
  it.runIf(process.platform === 'linux' && process.arch === 'x64')(
    'is what node-gyp-build resolves without a build from source, and it loads',
    () => {
      const probe =
        "const b = require('node-gyp-build'); const p = b.resolve('native'); const m = require(p);" +
        'console.log(JSON.stringify([p, m.libdeflateVersion, m.zstdVersion]))';
      const out = execFileSync(process.execPath, ['-e', probe], {
        cwd: root,
        env: { ...process.env, PREBUILDS_ONLY: '1' },
        encoding: 'utf8',
      });
      const [path, libdeflate, zstd] = JSON.parse(out) as [string, string, string];
      expect(path).toBe(prebuild('x64'));
      const info = buildInfo('x64');
      expect(info.get('libdeflate-dev:amd64')?.startsWith(`${libdeflate}-`)).toBe(true);
      expect(info.get('libzstd-dev:amd64')?.startsWith(`${zstd}+`)).toBe(true);
      expect(check(prebuild('x64'))).toContain('zstd round trip ok');
    },
  );

  it.runIf(process.platform === 'linux' && process.arch === 'x64')(
    'is rebuilt byte for byte by scripts/prebuild.sh from the Debian packages BUILDINFO names',
    async (ctx) => {
      const info = buildInfo('x64');
      const differ = [...info]
        .filter(([k]) => k !== 'sha256' && k !== 'debian')
        .filter(([pkg, v]) => installed(pkg) !== v);
      if (differ.length > 0)
        ctx.skip(
          `installed packages differ from BUILDINFO: ${differ.map(([p, v]) => `${p} ${v} (have ${installed(p) ?? 'none'})`).join(', ')}`,
        );
      const nodeApi = join(dirname(dirname(realpathSync(process.execPath))), 'include/node/node_api.h');
      if (!existsSync(nodeApi)) ctx.skip(`Node's headers are not installed (${nodeApi})`);
      const out = await tmpDir('canvos-prebuild-');
      try {
        const r = await run('bash', [join(root, 'scripts/prebuild.sh'), 'x64'], {
          cwd: root,
          env: { ...process.env, PREBUILD_DIR: out.path },
        });
        expect(r.code, r.stderr).toBe(0);
        expect(
          readFileSync(join(out.path, 'linux-x64/node.napi.glibc.node')).equals(readFileSync(prebuild('x64'))),
        ).toBe(true);
      } finally {
        await out.cleanup();
      }
    },
  );

  // scripts/prebuild.sh leaves Debian's arm64 Node as a sysroot in native/build/arm64-node; without it (and qemu) this
  // check is skipped: CI does not cross-build.
  const arm64Root = process.env.ARM64_ROOT ?? join(root, 'native/build/arm64-node');
  const qemu = ['/usr/bin/qemu-aarch64-static', '/usr/bin/qemu-aarch64'].find((q) => existsSync(q));
  it.runIf(process.arch === 'x64' && qemu !== undefined && existsSync(join(arm64Root, 'usr/bin/node')))(
    'linux-arm64 loads under qemu-aarch64 and compresses byte for byte like linux-x64',
    async () => {
      const r = await run(
        qemu!,
        ['-L', arm64Root, join(arm64Root, 'usr/bin/node'), join(root, 'scripts/prebuild-check.cjs'), prebuild('arm64')],
        { timeoutMs: 120_000 },
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(check(prebuild('x64')));
    },
  );
});
