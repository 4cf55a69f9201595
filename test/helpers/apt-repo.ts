/**
 * Signed local apt repositories of fixture packages (for the exec-step tests: no internet to Ubuntu/PGDG here):
 * .debs built with dpkg-deb from files and maintainer scripts, one suite with a Packages index and an InRelease
 * clear-signed by a fresh ed25519 key (armoured at `<dir>/key.asc`), served by {@link serveDir}.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './tools.js';

async function checked(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await run(cmd, args, { env: env ? { ...process.env, ...env } : undefined });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** One fixture package. */
export interface FixtureDeb {
  name: string;
  version: string;
  /** Depends: field, if any. */
  depends?: string;
  /** Path in the rootfs (no leading /) → content; files under a bin/ directory are 0755. */
  files: Record<string, string>;
  postinst?: string;
}

/** Build `pkg` into `<dir>/pool/`; returns the .deb path. */
export async function buildDeb(dir: string, pkg: FixtureDeb): Promise<string> {
  const root = join(dir, `${pkg.name}-src`);
  await mkdir(join(root, 'DEBIAN'), { recursive: true });
  const depends = pkg.depends ? `Depends: ${pkg.depends}\n` : '';
  await writeFile(
    join(root, 'DEBIAN/control'),
    `Package: ${pkg.name}\nVersion: ${pkg.version}\nArchitecture: amd64\n${depends}Maintainer: canvos-lite tests <t@example.invalid>\nDescription: ${pkg.name} fixture\n`,
  );
  if (pkg.postinst) {
    await writeFile(join(root, 'DEBIAN/postinst'), pkg.postinst);
    await chmod(join(root, 'DEBIAN/postinst'), 0o755);
  }
  for (const [p, content] of Object.entries(pkg.files)) {
    await mkdir(join(root, p, '..'), { recursive: true });
    await writeFile(join(root, p), content, { mode: p.includes('/bin/') ? 0o755 : 0o644 });
  }
  const out = join(dir, 'pool', `${pkg.name}_${pkg.version}_amd64.deb`);
  await mkdir(join(dir, 'pool'), { recursive: true });
  await checked('dpkg-deb', ['--root-owner-group', '--build', root, out]);
  return out;
}

/** A signed apt repository in `dir` with suite `suite` (component main, amd64) holding `pkgs`; key at `<dir>/key.asc`. */
export async function signedAptRepo(dir: string, suite: string, pkgs: readonly FixtureDeb[]): Promise<void> {
  let packages = '';
  for (const pkg of pkgs) {
    const d = await buildDeb(dir, pkg);
    const bytes = await readFile(d);
    const control = await checked('dpkg-deb', ['-f', d]);
    packages += `${control.trim()}\nFilename: pool/${d.split('/').pop()}\nSize: ${bytes.length}\nSHA256: ${createHash('sha256').update(bytes).digest('hex')}\n\n`;
  }
  const dist = join(dir, 'dists', suite);
  await mkdir(join(dist, 'main/binary-amd64'), { recursive: true });
  await writeFile(join(dist, 'main/binary-amd64/Packages'), packages);
  const sha = createHash('sha256').update(packages).digest('hex');
  const release = `Origin: canvos-test\nLabel: ${suite} fixture\nSuite: ${suite}\nCodename: ${suite}\nDate: Thu, 01 Jan 2026 00:00:00 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n ${sha} ${Buffer.byteLength(packages)} main/binary-amd64/Packages\n`;
  await writeFile(join(dist, 'Release'), release);
  const gnupg = join(dir, '..', `gnupg-${suite}`);
  await mkdir(gnupg, { mode: 0o700 });
  const env = { GNUPGHOME: gnupg };
  await checked(
    'gpg',
    ['--batch', '--passphrase', '', '--quick-gen-key', 'canvos test <t@example.invalid>', 'ed25519', 'sign', 'never'],
    env,
  );
  await writeFile(join(dir, 'key.asc'), await checked('gpg', ['--armor', '--export'], env));
  await checked(
    'gpg',
    [
      '--batch',
      '--yes',
      '--clearsign',
      '--digest-algo',
      'SHA256',
      '-o',
      join(dist, 'InRelease'),
      join(dist, 'Release'),
    ],
    env,
  );
}

/** Serve the files of `dir` over HTTP on 127.0.0.1 (404 for anything missing); returns the server and its URL. */
export async function serveDir(dir: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const p = join(dir, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    readFile(p).then(
      (b) => res.end(b),
      () => {
        res.statusCode = 404;
        res.end();
      },
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}
