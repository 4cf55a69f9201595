/**
 * `canvos-lite iso` from a CanvOS-shaped project: every ISO input CanvOS reads has its effect or a warning.
 * overlay/files-iso/ (a site grub.cfg with CanvOS's placeholders, extra files), local-ui.tar (→ /opt/spectrocloud
 * in the squashfs), a missing CLUSTERCONFIG and EDGE_CUSTOM_CONFIG (skipped with a warning, as CanvOS's
 * `COPY --if-exists`), a content-* directory with a stray file; and a bad local-ui.tar fails before any output.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyGrubEdits } from '../../src/iso/grub-cfg.js';
import { prepareBootFixture } from '../helpers/boot-fixture.js';
import { runCli } from '../helpers/cli.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { run, tmpDir } from '../helpers/tools.js';

let tmp: Awaited<ReturnType<typeof tmpDir>>;
let project: string;

const SITE_GRUB = `search --no-floppy --file --set=root /boot/kernel
set default={{DEFAULT_ENTRY}}
set timeout=3
menuentry "Site Installer" --class os --unrestricted {
    linux ($root)/boot/kernel cdroot root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs rd.immucore.sysrootwait=600 site=1
    initrd ($root)/boot/initrd
}
menuentry "Site Interactive" --class os --unrestricted {
    linux ($root)/boot/kernel cdroot root=live:CDLABEL=COS_LIVE rd.live.squashimg=rootfs.squashfs rd.immucore.sysrootwait=600 interactive-install
    initrd ($root)/boot/initrd
}
`;

async function cli(cwd: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    HOME: tmp.path,
    PATH: process.env.PATH,
    CANVOS_CACHE_DIR: join(tmp.path, 'cache'),
    SOURCE_DATE_EPOCH: '1700000000',
  };
  return runCli(args, { env, cwd });
}

beforeAll(async () => {
  tmp = await tmpDir('canvos-installer-inputs-');
  const fx = await prepareBootFixture();
  const stylus = join(tmp.path, 'stylus');
  await makeOciLayout(stylus, {
    platforms: ['linux/amd64'],
    layers: 1,
    layerBytes: 512,
    tag: 'v4.9.38',
    files: { 'opt/spectrocloud/bin/stylus-agent': '#!stylus\n' },
  });
  project = join(tmp.path, 'project');
  await mkdir(join(project, 'overlay/files-iso/boot/grub2'), { recursive: true });
  await mkdir(join(project, 'overlay/files-iso/opt/spectrocloud/content'), { recursive: true });
  await writeFile(join(project, 'overlay/files-iso/boot/grub2/grub.cfg'), SITE_GRUB);
  await writeFile(join(project, 'overlay/files-iso/opt/spectrocloud/content/Readme.txt'), '');
  await writeFile(join(project, 'overlay/files-iso/site-notes.txt'), 'rack 7\n');
  await mkdir(join(project, 'ui/ui'), { recursive: true });
  await writeFile(join(project, 'ui/ui/index.html'), '<html>ui</html>\n');
  const t = await run('tar', [
    '--owner=0',
    '--group=0',
    '-cf',
    join(project, 'local-ui.tar'),
    '-C',
    join(project, 'ui'),
    'ui',
  ]);
  expect(t.code, t.stderr).toBe(0);
  await mkdir(join(project, 'content-site'));
  await writeFile(join(project, 'content-site/bundle.zst'), 'zstd');
  await writeFile(join(project, 'content-site/README.md'), 'notes');
  await writeFile(
    join(project, '.arg'),
    [
      'OS_DISTRIBUTION=ubuntu',
      'OS_VERSION=22.04',
      'K8S_DISTRIBUTION=k3s',
      'ISO_NAME=site',
      'ARCH=amd64',
      `BASE_IMAGE=oci:${fx.layoutDir}:${fx.tag}`,
      `STYLUS_BASE=oci:${stylus}:v4.9.38`,
      'CLUSTERCONFIG=spc.tgz',
      'EDGE_CUSTOM_CONFIG=site-signing.yaml',
      'FORCE_INTERACTIVE_INSTALL=true',
      'DEBUG=true',
      '',
    ].join('\n'),
  );
}, 600_000);
afterAll(async () => {
  await tmp?.cleanup();
});

describe('canvos-lite iso: CanvOS ISO inputs of a project', () => {
  it('honours overlay/files-iso and local-ui.tar, warns for what CanvOS skips', async () => {
    const r = await cli(project, 'iso', '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as {
      isoPath: string;
      layers: string[];
      filesIso: string;
      localUi: string;
      clusterConfig: string | null;
    };
    expect(j.layers.at(-1)).toBe('local-ui');
    expect(j.filesIso).toBe(join(project, 'overlay/files-iso'));
    expect(j.localUi).toBe(join(project, 'local-ui.tar'));
    expect(j.clusterConfig).toBeNull();
    expect(r.stderr).toMatch(
      /^warning: .*CLUSTERCONFIG=spc\.tgz: .*spc\.tgz does not exist, .* \[W_CLUSTERCONFIG_MISSING\]$/m,
    );
    expect(r.stderr).toMatch(
      /^warning: .*EDGE_CUSTOM_CONFIG=site-signing\.yaml: .*site-signing\.yaml does not exist, .* \[W_EDGE_CUSTOM_CONFIG_MISSING\]$/m,
    );
    expect(r.stderr).toMatch(/^warning: .*content-site: README\.md not copied: .* \[W_CONTENT_NOT_ZST\]$/m);

    const out = join(tmp.path, 'x');
    await mkdir(out);
    const x = await run('xorriso', [
      '-osirrox',
      'on',
      '-indev',
      j.isoPath,
      '-extract',
      '/boot/grub2/grub.cfg',
      join(out, 'grub.cfg'),
      '-extract',
      '/site-notes.txt',
      join(out, 'notes'),
      '-extract',
      '/rootfs.squashfs',
      join(out, 'sq'),
    ]);
    expect(x.code, x.stderr).toBe(0);
    const grub = await readFile(join(out, 'grub.cfg'), 'utf8');
    expect(grub).toBe(applyGrubEdits(SITE_GRUB, { forceInteractive: true, debug: true }));
    expect(grub).toContain('interactive-install rd.immucore.debug console=tty0 rd.debug\n');
    expect(await readFile(join(out, 'notes'), 'utf8')).toBe('rack 7\n');
    const find = await run('xorriso', ['-indev', j.isoPath, '-find', '/opt', '-type', 'f']);
    expect(find.stdout).toContain("'/opt/spectrocloud/content/bundle.zst_part00'");
    expect(find.stdout).not.toContain('clusterconfig');
    const cat = await run('unsquashfs', ['-cat', join(out, 'sq'), 'opt/spectrocloud/ui/index.html']);
    expect(cat.stdout).toBe('<html>ui</html>\n');
    const agent = await run('unsquashfs', ['-cat', join(out, 'sq'), 'opt/spectrocloud/bin/stylus-agent']);
    expect(agent.stdout).toBe('#!stylus\n'); // the stylus image's files under /opt/spectrocloud stay
  }, 300_000);

  it('--files-iso and --local-ui are --base flags; the project provides them otherwise', async () => {
    const r = await cli(project, 'iso', '--local-ui', 'local-ui.tar');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--local-ui only applies with --base; the project provides it/);
    expect(r.stderr).toMatch(/overlay\/files-iso\/ and <project>\/local-ui\.tar/);
  });

  it('a local-ui.tar with an escaping path fails with exit 11 before any image is read or output written', async () => {
    const bad = join(tmp.path, 'bad');
    await mkdir(bad);
    await writeFile(join(bad, '.arg'), await readFile(join(project, '.arg'), 'utf8'));
    await writeFile(join(bad, 'passwd'), 'x');
    // GNU tar keeps the member name as given with -P.
    const t = await run('tar', [
      '-P',
      '--transform=s,^,../../etc/,',
      '-cf',
      join(bad, 'local-ui.tar'),
      '-C',
      bad,
      'passwd',
    ]);
    expect(t.code, t.stderr).toBe(0);
    const r = await cli(bad, 'iso');
    expect(r.code).toBe(11);
    expect(r.stderr).toMatch(/local-ui\.tar/);
    expect(r.stderr).not.toMatch(/^iso: resolve/m);
    await expect(stat(join(bad, 'build'))).rejects.toThrow();
  });
});
