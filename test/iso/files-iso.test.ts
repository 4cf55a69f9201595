/**
 * CanvOS's ISO inputs beyond user-data: overlay/files-iso/ (copied first; its grub.cfg is used with CanvOS's
 * DEFAULT_ENTRY/DEBUG edits; later CanvOS steps and AuroraBoot's boot files replace its files, with warnings) and
 * local-ui.tar (extracted into /opt/spectrocloud of the rootfs, streamed as the top layer; unsafe tars refused
 * before anything is written). Checked in the ISO with xorriso and in its squashfs with unsquashfs.
 */
import { chmod, mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import { buildIso } from '../../src/iso/build-iso.js';
import { scanFilesIso } from '../../src/iso/files-iso.js';
import { applyGrubEdits } from '../../src/iso/grub-cfg.js';
import { checkLocalUi, localUiLayer } from '../../src/iso/local-ui.js';
import { mergeLayers } from '../../src/layers/merge.js';
import { layoutOpeners, layoutRootfs, prepareBootFixture, type BootFixture } from '../helpers/boot-fixture.js';
import { run, tmpDir } from '../helpers/tools.js';

let dir: Awaited<ReturnType<typeof tmpDir>>;
let fx: BootFixture;
beforeAll(async () => {
  dir = await tmpDir('canvos-files-iso-');
  fx = await prepareBootFixture();
}, 600_000);
afterAll(async () => {
  await dir?.cleanup();
});

async function extract(iso: string, path: string): Promise<string> {
  const dest = join(dir.path, `x-${path.replace(/\W/g, '_')}-${Math.random().toString(36).slice(2)}`);
  const r = await run('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', path, dest]);
  expect(r.code, r.stderr).toBe(0);
  return dest;
}

const CUSTOM_GRUB = `set default={{DEFAULT_ENTRY}}
set timeout=7
menuentry "Site installer" {
    linux ($root)/boot/kernel root=live:CDLABEL=COS_LIVE rd.live.squashimg=rootfs.squashfs rd.immucore.sysrootwait=600 site.custom=1
    initrd ($root)/boot/initrd
}
`;

describe('overlay/files-iso', () => {
  it("goes onto the ISO first: the project's grub.cfg with CanvOS's edits, its files at their paths, later steps win", async () => {
    const fi = join(dir.path, 'project', 'overlay', 'files-iso');
    await mkdir(join(fi, 'boot', 'grub2'), { recursive: true });
    await mkdir(join(fi, 'opt', 'spectrocloud', 'content'), { recursive: true });
    await mkdir(join(fi, 'files-iso'), { recursive: true });
    await mkdir(join(fi, 'extras'), { recursive: true });
    await writeFile(join(fi, 'boot', 'grub2', 'grub.cfg'), CUSTOM_GRUB);
    await writeFile(join(fi, 'boot', 'kernel'), 'not a kernel');
    await writeFile(join(fi, 'opt', 'spectrocloud', 'content', 'Readme.txt'), 'site readme\n');
    await writeFile(join(fi, 'files-iso', 'config.yaml'), '#cloud-config\nfrom: overlay\n');
    await writeFile(join(fi, 'config.yaml'), '#cloud-config\nfrom: overlay root\n');
    await writeFile(join(fi, 'extras', 'tool.sh'), '#!/bin/sh\necho hi\n');
    await chmod(join(fi, 'extras', 'tool.sh'), 0o700);
    await symlink('tool.sh', join(fi, 'extras', 'tool'));
    await writeFile(join(dir.path, 'user-data'), '#cloud-config\nfrom: user-data\n');
    const warnings: string[] = [];
    const res = await buildIso(
      {
        rootfs: await layoutRootfs(fx.layoutDir),
        filesIsoDir: fi,
        userData: join(dir.path, 'user-data'),
        outputDir: join(dir.path, 'out1'),
        forceInteractive: true,
        debug: true,
      },
      { onWarning: (code, msg) => warnings.push(`${code} ${msg}`), sourceDateEpoch: 1_700_000_000 },
    );
    const grub = await readFile(await extract(res.isoPath, '/boot/grub2/grub.cfg'), 'utf8');
    expect(grub).toBe(applyGrubEdits(CUSTOM_GRUB, { forceInteractive: true, debug: true }));
    expect(grub).toMatch(/^set default=2$/m);
    expect(grub).toContain('site.custom=1 rd.immucore.debug console=tty0 rd.debug\n');
    expect((await readFile(await extract(res.isoPath, '/boot/kernel'))).equals(await readFile(fx.kernel))).toBe(true);
    expect(await readFile(await extract(res.isoPath, '/opt/spectrocloud/content/Readme.txt'), 'utf8')).toBe(
      'site readme\n',
    );
    expect(await readFile(await extract(res.isoPath, '/files-iso/config.yaml'), 'utf8')).toBe(
      '#cloud-config\nfrom: user-data\n',
    );
    const ls = await run('xorriso', ['-indev', res.isoPath, '-lsl', '/extras']);
    expect(ls.stdout).toMatch(/^-rwxr-xr-x\s+1 0\s+0 .* 'tool\.sh'$/m);
    expect(ls.stdout).toMatch(/^lrwxrwxrwx\s+1 0\s+0 .* 'tool' -> 'tool\.sh'$/m);
    expect(warnings.join('\n')).toMatch(
      /W_FILES_ISO_REPLACED .*boot\/kernel is not used: the build generates \/boot\/kernel/,
    );
    expect(warnings.join('\n')).toMatch(/W_FILES_ISO_REPLACED .*files-iso\/config\.yaml is replaced by the user-data/);
    expect(warnings.join('\n')).toMatch(/W_FILES_ISO_CONFIG .*config\.yaml stays at \/config\.yaml/);
    expect(await readFile(await extract(res.isoPath, '/config.yaml'), 'utf8')).toBe(
      '#cloud-config\nfrom: overlay root\n',
    );
    expect(warnings).toHaveLength(3);
  }, 240_000);

  it('warns when a custom grub.cfg cannot take FORCE_INTERACTIVE_INSTALL or DEBUG', async () => {
    const fi = join(dir.path, 'fi2');
    await mkdir(join(fi, 'boot', 'grub2'), { recursive: true });
    await writeFile(
      join(fi, 'boot', 'grub2', 'grub.cfg'),
      'set default=1\nmenuentry "x" { linux ($root)/boot/kernel quiet\n}\n',
    );
    const warnings: string[] = [];
    const res = await buildIso(
      {
        rootfs: await layoutRootfs(fx.layoutDir),
        filesIsoDir: fi,
        outputDir: join(dir.path, 'out2'),
        forceInteractive: true,
        debug: true,
      },
      { onWarning: (code) => warnings.push(code) },
    );
    expect(warnings.sort()).toEqual(['W_GRUB_NO_DEBUG_LINE', 'W_GRUB_NO_DEFAULT_ENTRY']);
    expect(await readFile(await extract(res.isoPath, '/boot/grub2/grub.cfg'), 'utf8')).toMatch(/^set default=1$/m);
  }, 240_000);

  it('refuses special files and symlinks the build writes through, before writing anything', async () => {
    const fifo = join(dir.path, 'fi3');
    await mkdir(fifo);
    expect((await run('mkfifo', [join(fifo, 'pipe')])).code).toBe(0);
    const e1 = await scanFilesIso(fifo).catch((e: unknown) => e);
    expect(CanvosError.is(e1) && e1.code).toBe('ERR_CONFIG');
    expect((e1 as Error).message).toContain(join(fifo, 'pipe'));
    const e0 = await scanFilesIso(join(dir.path, 'no-such-dir')).catch((e: unknown) => e);
    expect(CanvosError.is(e0) && e0.code).toBe('ERR_CONFIG');
    const link = join(dir.path, 'fi4');
    await mkdir(link);
    await symlink('/tmp', join(link, 'opt'));
    const out = join(dir.path, 'out4');
    const e2 = await buildIso({ rootfs: await layoutRootfs(fx.layoutDir), filesIsoDir: link, outputDir: out }).catch(
      (e: unknown) => e,
    );
    expect(CanvosError.is(e2) && e2.code).toBe('ERR_CONFIG');
    expect((e2 as Error).message).toMatch(/opt is not a directory, but the build writes into \/opt/);
    await expect(readdir(out)).rejects.toThrow();
  });
});

describe('local-ui.tar', () => {
  it('is extracted into /opt/spectrocloud of the rootfs, with the owners and modes of the tar, over the image files', async () => {
    const src = join(dir.path, 'ui-src');
    await mkdir(join(src, 'ui', 'assets'), { recursive: true });
    await writeFile(join(src, 'ui', 'index.html'), '<html>local ui</html>\n');
    await writeFile(join(src, 'ui', 'assets', 'app.js'), 'console.log(1)\n');
    await writeFile(join(src, 'ui', 'start.sh'), '#!/bin/sh\n');
    await chmod(join(src, 'ui', 'start.sh'), 0o750);
    const tar = join(dir.path, 'local-ui.tar');
    const t = await run('tar', [
      '--sort=name',
      '--owner=1000',
      '--group=1000',
      '--numeric-owner',
      '-cf',
      tar,
      '-C',
      src,
      '.',
    ]);
    expect(t.code, t.stderr).toBe(0);
    expect(await checkLocalUi(tar)).toBe(6);
    const res = await buildIso({
      rootfs: mergeLayers([...(await layoutOpeners(fx.layoutDir)), localUiLayer(tar)]),
      outputDir: join(dir.path, 'out-ui'),
    });
    const sq = await extract(res.isoPath, '/rootfs.squashfs');
    const ls = await run('unsquashfs', ['-lln', sq]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/^-rw-r--r-- 1000\/1000\s+22 .* squashfs-root\/opt\/spectrocloud\/ui\/index\.html$/m);
    expect(ls.stdout).toMatch(/^-rwxr-x--- 1000\/1000\s+10 .* squashfs-root\/opt\/spectrocloud\/ui\/start\.sh$/m);
    expect(ls.stdout).toMatch(/squashfs-root\/opt\/spectrocloud\/ui\/assets\/app\.js$/m);
    expect(ls.stdout).toMatch(/squashfs-root\/etc\/canvos-test-marker$/m); // the image is still there
    const cat = await run('unsquashfs', ['-cat', sq, 'opt/spectrocloud/ui/index.html']);
    expect(cat.stdout).toBe('<html>local ui</html>\n');
  }, 240_000);

  it('refuses a tar with ../ paths or whiteout names (ERR_TAR_UNSAFE) and a missing file (ERR_CONFIG)', async () => {
    // GNU tar keeps a member name as given with -P; --transform puts it where extraction must not go.
    const mk = async (name: string, member: string): Promise<void> => {
      const src = join(dir.path, `member-${name}`);
      await mkdir(src, { recursive: true });
      await writeFile(join(src, 'f'), 'hi');
      const r = await run('tar', ['-P', `--transform=s,^f$,${member},`, '-cf', join(dir.path, name), '-C', src, 'f']);
      expect(r.code, r.stderr).toBe(0);
    };
    const evil = join(dir.path, 'evil.tar');
    await mk('evil.tar', '../../etc/cron.d/x');
    const e1 = await checkLocalUi(evil).catch((e: unknown) => e);
    expect(CanvosError.is(e1) && e1.code).toBe('ERR_TAR_UNSAFE');
    const wh = join(dir.path, 'wh.tar');
    await mk('wh.tar', 'bin/.wh.stylus-agent');
    const e2 = await checkLocalUi(wh).catch((e: unknown) => e);
    expect(CanvosError.is(e2) && e2.code).toBe('ERR_TAR_UNSAFE');
    expect((e2 as Error).message).toContain('entry bin/.wh.stylus-agent has a whiteout name');
    const e3 = await checkLocalUi(join(dir.path, 'nope.tar')).catch((e: unknown) => e);
    expect(CanvosError.is(e3) && e3.code).toBe('ERR_CONFIG');
  });
});
