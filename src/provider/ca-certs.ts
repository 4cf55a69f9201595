/**
 * CanvOS's CA step (Dockerfile 10–25) as layer entries: `cp -a /certs/. <anchors>/` for ubuntu, opensuse-leap and
 * rhel (sles is not handled by CanvOS's Dockerfile), then what the distribution's tool writes, computed here:
 *
 * - ubuntu, `update-ca-certificates` (Debian's script): only `*.crt` files (recursively, symlinks followed, sorted)
 *   are trusted; each is appended to /etc/ssl/certs/ca-certificates.crt (a missing final newline added), linked as
 *   /etc/ssl/certs/<name>.pem, and `openssl rehash` links `<subject hash>.N` to that link when it holds exactly one
 *   PEM certificate.
 * - opensuse-leap and rhel, p11-kit (`update-ca-certificates` / `update-ca-trust`): every regular file directly in
 *   the anchors directory, PEM (every certificate block) or DER, any name; the extracted bundle gets each
 *   certificate as `# <label>` + PEM.
 *
 * Files a tool would not pick are copied as CanvOS copies them, with a warning saying why they are not trusted.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { LayerEntrySpec } from '../layers/spec.js';
import type { BaseFile, BaseScan } from './base-scan.js';
import type { BuildConfig, WarningHandler } from './resolve.js';
import { certificatesOf, certLabel, subjectHash, toPem } from './x509-name.js';

type Distro = BuildConfig['osDistribution'];

/**
 * Per-distribution anchors directory, the bundle its tool writes (null tool: CanvOS installs no certificates) and the
 * other PEM bundles it extracts (updated only when the base has them: new anchors are trusted for every purpose).
 */
export const CA_PATHS: Readonly<
  Record<
    Distro,
    {
      anchors: string;
      bundle: string;
      tool: 'update-ca-certificates' | 'p11-kit' | null;
      extraBundles?: readonly string[];
    }
  >
> = {
  ubuntu: {
    anchors: '/usr/local/share/ca-certificates',
    bundle: '/etc/ssl/certs/ca-certificates.crt',
    tool: 'update-ca-certificates',
  },
  'opensuse-leap': {
    anchors: '/usr/share/pki/trust/anchors',
    bundle: '/var/lib/ca-certificates/ca-bundle.pem',
    tool: 'p11-kit',
  },
  sles: { anchors: '/usr/share/pki/trust/anchors', bundle: '/var/lib/ca-certificates/ca-bundle.pem', tool: null },
  rhel: {
    anchors: '/etc/pki/ca-trust/source/anchors',
    bundle: '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem',
    tool: 'p11-kit',
    extraBundles: [
      '/etc/pki/ca-trust/extracted/pem/email-ca-bundle.pem',
      '/etc/pki/ca-trust/extracted/pem/objsign-ca-bundle.pem',
    ],
  },
};

/** Where update-ca-certificates writes its links. */
export const ETC_CERTS_DIR = '/etc/ssl/certs';

interface HostFile {
  /** Path below certs/ (posix). */
  rel: string;
  content: Buffer;
}

/** Regular files below `dir` (symlinks followed, like `find -L`), relative paths, byte-sorted; `recursive` or top level only. */
async function hostFiles(dir: string, recursive: boolean, rel = ''): Promise<{ files: HostFile[]; dirs: string[] }> {
  const out: HostFile[] = [];
  const dirs: string[] = [];
  for (const name of (await readdir(join(dir, rel))).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    const st = await stat(join(dir, r)).catch(() => undefined);
    if (st?.isDirectory()) {
      dirs.push(r);
      if (recursive) {
        const sub = await hostFiles(dir, true, r);
        out.push(...sub.files);
        dirs.push(...sub.dirs);
      }
    } else if (st?.isFile()) {
      out.push({ rel: r, content: await readFile(join(dir, r)) });
    }
  }
  return { files: out, dirs };
}

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));
const PEM_OBJECT_RE = /-----BEGIN (?:X509 CERTIFICATE|CERTIFICATE|TRUSTED CERTIFICATE|X509 CRL)-----/g;

/** update-ca-certificates' link name: basename without `.crt`, ` `→`_`, `(`/`)`→`=`, `,`→`_`, plus `.pem`. */
export function debianPemName(rel: string): string {
  const base = posix.basename(rel).replace(/\.crt$/, '');
  return `${base.replaceAll(' ', '_').replace(/[()]/g, '=').replaceAll(',', '_')}.pem`;
}

/**
 * The entries CanvOS's CA step adds for the project's `certs/` directory (none when it is absent or empty).
 * `scan` must hold the base's bundle file and the listing of /etc/ssl/certs.
 */
export async function caCertsEntries(
  certsDir: string,
  distro: Distro,
  scan: Pick<BaseScan, 'files' | 'children'>,
  warn: WarningHandler,
): Promise<LayerEntrySpec[]> {
  const isDir = await stat(certsDir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) return [];
  const all = await hostFiles(certsDir, true);
  if (all.files.length === 0) return [];
  const ca = CA_PATHS[distro];
  if (!ca.tool) {
    warn(
      'W_CERTS_NOT_INSTALLED',
      `${certsDir}: CanvOS's Dockerfile installs certs/ only for ubuntu, opensuse-leap and rhel, so for ${distro} the certificates are not added (as in CanvOS); put them into BASE_IMAGE`,
    );
    return [];
  }
  const entries: LayerEntrySpec[] = [
    { type: 'tree', path: ca.anchors, host: certsDir },
    { type: 'dir', path: ca.anchors, mode: 0o755 }, // cp -a /certs/. gives the anchors directory /certs' metadata
  ];
  const base = scan.files.get(ca.bundle.slice(1));
  const parts: Buffer[] = [base?.content ?? Buffer.alloc(0)];
  const shown = (rel: string): string => join(certsDir, rel);

  if (ca.tool === 'update-ca-certificates') {
    const crts = all.files.filter((f) => f.rel.endsWith('.crt')).sort((a, b) => byteOrder(a.rel, b.rel));
    // Empty placeholders (certs/.keep) are copied silently: there is nothing in them to trust.
    for (const f of all.files.filter((x) => !x.rel.endsWith('.crt') && x.content.length > 0)) {
      warn(
        'W_CERT_IGNORED',
        `${shown(f.rel)} is copied to ${ca.anchors} but not trusted: update-ca-certificates only reads *.crt files (rename it to .crt)`,
      );
    }
    const existing = new Set(scan.children.get(ETC_CERTS_DIR.slice(1)) ?? []);
    const links = new Map<string, string>(); // name → target, later ln -sf wins
    const pemOf = new Map<string, HostFile>();
    for (const f of crts) {
      if (f.content.length > 0) parts.push(f.content, f.content.at(-1) === 0x0a ? Buffer.alloc(0) : Buffer.from('\n'));
      const name = debianPemName(f.rel);
      links.set(name, `${ca.anchors}/${f.rel}`);
      pemOf.set(name, f);
    }
    // openssl rehash: one `<hash>.N` per link holding exactly one PEM certificate (duplicates skipped).
    const seen = new Set<string>();
    for (const name of [...links.keys()].sort(byteOrder)) {
      const f = pemOf.get(name) as HostFile;
      const objects = f.content.toString('latin1').match(PEM_OBJECT_RE)?.length ?? 0;
      const der = objects === 1 ? certificatesOf(f.content)[0] : undefined;
      if (!der) {
        if (objects === 0)
          warn(
            'W_CERT_NOT_PEM',
            `${shown(f.rel)} is not PEM: update-ca-certificates appends its bytes to ${ca.bundle} unchanged and openssl rehash skips it; convert it with openssl x509 -inform der`,
          );
        continue;
      }
      const fingerprint = der.toString('base64');
      if (seen.has(fingerprint)) continue;
      seen.add(fingerprint);
      const hash = subjectHash(der);
      let n = 0;
      while (existing.has(`${hash}.${n}`)) n++;
      existing.add(`${hash}.${n}`);
      links.set(`${hash}.${n}`, name);
    }
    for (const [name, target] of links) entries.push({ type: 'symlink', path: `${ETC_CERTS_DIR}/${name}`, target });
  } else {
    for (const d of all.dirs.filter((x) => !x.includes('/'))) {
      warn(
        'W_CERT_IGNORED',
        `${shown(d)}/ is copied to ${ca.anchors} but p11-kit reads only the files directly in the anchors directory`,
      );
    }
    for (const f of all.files.filter((x) => !x.rel.includes('/'))) {
      const certs = certificatesOf(f.content);
      if (certs.length === 0 && f.content.length > 0)
        warn(
          'W_CERT_IGNORED',
          `${shown(f.rel)} is copied to ${ca.anchors} but holds no PEM or DER certificate, so p11-kit does not trust it`,
        );
      for (const der of certs) parts.push(Buffer.from(`# ${certLabel(der)}\n${toPem(der)}`));
    }
  }
  if (parts.length > 1) {
    const added = parts.slice(1);
    const write = (path: string, file: BaseFile | undefined): void => {
      const head = file?.content ?? Buffer.alloc(0);
      const sep = head.length && head.at(-1) !== 0x0a ? [Buffer.from('\n')] : [];
      entries.push({
        type: 'file',
        path,
        source: { inline: Buffer.concat([head, ...sep, ...added]) },
        mode: file?.mode ?? 0o644,
        uid: file?.uid ?? 0,
        gid: file?.gid ?? 0,
      });
    };
    write(ca.bundle, base);
    for (const extra of ca.extraBundles ?? []) {
      const file = scan.files.get(extra.slice(1));
      if (file) write(extra, file);
    }
  }
  return entries;
}
