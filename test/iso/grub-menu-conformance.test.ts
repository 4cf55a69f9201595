/**
 * The built-in grub menu against CanvOS's files-iso grub.cfg (fixture reconstructed from canvos.md §3.4): for
 * FORCE_INTERACTIVE_INSTALL and DEBUG true/false, the real `sed` commands of CanvOS's Earthfile (build-iso) are run
 * on the fixture, and our menu must be identical to the result with comments and blank lines left out, its kernel
 * command lines identical word for word, per firmware (grub's $consoleparams/$videoparams expanded).
 */
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANVOS_GRUB_TEMPLATE, applyGrubEdits, canvosGrubMenu } from '../../src/iso/grub-cfg.js';
import { run, tmpDir } from '../helpers/tools.js';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'canvos-files-iso-grub.cfg');
let dir: Awaited<ReturnType<typeof tmpDir>>;
beforeAll(async () => {
  dir = await tmpDir('canvos-grub-conf-');
});
afterAll(async () => {
  await dir?.cleanup();
});

/** CanvOS Earthfile build-iso, the two RUN steps on /overlay/boot/grub2/grub.cfg, with the real sed. */
async function canvosSed(src: string, forceInteractive: boolean, debug: boolean): Promise<string> {
  const f = join(dir.path, `grub-${forceInteractive}-${debug}.cfg`);
  await copyFile(src, f);
  const sh = [
    `if [ "$FORCE_INTERACTIVE_INSTALL" = "true" ]; then sed 's/{{DEFAULT_ENTRY}}/2/g' "$F" > "$F.tmp" && mv "$F.tmp" "$F"; else sed 's/{{DEFAULT_ENTRY}}/0/g' "$F" > "$F.tmp" && mv "$F.tmp" "$F"; fi`,
    `if [ "$DEBUG" = "true" ]; then sed -i '/rd.immucore.sysrootwait/s/$/ rd.immucore.debug console=tty0 rd.debug/' "$F"; fi`,
  ].join('\n');
  const r = await run('sh', ['-c', sh], {
    env: { PATH: process.env.PATH, F: f, FORCE_INTERACTIVE_INSTALL: String(forceInteractive), DEBUG: String(debug) },
  });
  expect(r.code, r.stderr).toBe(0);
  return readFile(f, 'utf8');
}

const significant = (cfg: string): string[] =>
  cfg.split('\n').filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));

/** The kernel command line of every menu entry, as grub expands it on `platform`. */
function cmdlines(cfg: string, platform: 'efi' | 'pc'): string[][] {
  const vars =
    platform === 'efi'
      ? { consoleparams: 'console=ttyS0,115200n8 console=tty0', videoparams: '' }
      : { consoleparams: 'console=tty1 console=ttyS0', videoparams: 'vga=795 nomodeset' };
  // The values must be the ones the file itself sets for that firmware.
  const blocks =
    /if \[ "\$\{grub_platform\}" = "efi" \]; then\n\s+set consoleparams="([^"]*)"\n\s+set videoparams="([^"]*)"\nelse\n\s+set consoleparams="([^"]*)"\n\s+set videoparams="([^"]*)"/.exec(
      cfg,
    );
  expect(blocks).not.toBeNull();
  const [efiC, efiV, pcC, pcV] = (blocks ?? []).slice(1);
  expect(platform === 'efi' ? [efiC, efiV] : [pcC, pcV]).toEqual([vars.consoleparams, vars.videoparams]);
  return [...cfg.matchAll(/^\s*\$linux \(\$root\)\/boot\/kernel (.*)$/gm)].map((m) =>
    (m[1] ?? '')
      .replaceAll('$consoleparams', vars.consoleparams)
      .replaceAll('$videoparams', vars.videoparams)
      .split(/\s+/)
      .filter(Boolean),
  );
}

describe('grub menu = CanvOS files-iso grub.cfg', () => {
  it('the built-in template is the fixture without comments and blank lines', async () => {
    expect(significant(CANVOS_GRUB_TEMPLATE)).toEqual(significant(await readFile(FIXTURE, 'utf8')));
  });

  for (const forceInteractive of [false, true]) {
    for (const debug of [false, true]) {
      it(`FORCE_INTERACTIVE_INSTALL=${forceInteractive} DEBUG=${debug}: identical to CanvOS's sed output, same kernel command lines`, async () => {
        const ours = canvosGrubMenu({ forceInteractive, debug });
        const theirs = await canvosSed(FIXTURE, forceInteractive, debug);
        const a = join(dir.path, `canvos-${forceInteractive}-${debug}.txt`);
        const b = join(dir.path, `ours-${forceInteractive}-${debug}.txt`);
        await writeFile(a, `${significant(theirs).join('\n')}\n`);
        await writeFile(b, `${significant(ours).join('\n')}\n`);
        const diff = await run('diff', ['-u', a, b]);
        expect(diff.code, diff.stdout).toBe(0);
        for (const p of ['efi', 'pc'] as const) expect(cmdlines(ours, p)).toEqual(cmdlines(theirs, p));
        expect(ours).toMatch(new RegExp(`^set default=${forceInteractive ? 2 : 0}$`, 'm'));
        // A project's own grub.cfg gets the same edits, byte for byte as sed.
        const raw = await readFile(FIXTURE, 'utf8');
        expect(applyGrubEdits(raw, { forceInteractive, debug })).toBe(theirs);
      });
    }
  }

  it('the command lines CanvOS documents (§3.4): consoles per firmware, nodepair.enable in the interactive entry', () => {
    const efi = cmdlines(canvosGrubMenu(), 'efi').map((w) => w.join(' '));
    const pc = cmdlines(canvosGrubMenu(), 'pc').map((w) => w.join(' '));
    const tail =
      'selinux=0 rd.live.overlay.overlayfs rd.immucore.sysrootwait=600 systemd.unified_cgroup_hierarchy=1 rd.driver.blacklist=nouveau,qat_4xxx modprobe.blacklist=nouveau,qat_4xxx nouveau.modeset=0';
    const head = 'cdroot root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs net.ifnames=1';
    expect(efi).toEqual([
      `${head} console=ttyS0,115200n8 console=tty0 rd.cos.disable nodepair.enable ${tail}`,
      `${head} console=ttyS0,115200n8 console=tty0 rd.cos.disable ${tail}`,
      `${head} console=ttyS0,115200n8 console=tty0 rd.cos.disable nodepair.enable ${tail} interactive-install`,
    ]);
    expect(pc).toEqual([
      `${head} console=tty1 console=ttyS0 rd.cos.disable vga=795 nomodeset nodepair.enable ${tail}`,
      `${head} console=tty1 console=ttyS0 rd.cos.disable ${tail}`,
      `${head} console=tty1 console=ttyS0 rd.cos.disable vga=795 nomodeset nodepair.enable ${tail} interactive-install`,
    ]);
    const m = canvosGrubMenu();
    expect(m).toMatch(/^\s+loadfont \$\{font\}$/m);
    expect(m).toMatch(/hiddenentry "Text mode" --hotkey "t"/);
    expect(m).toMatch(/^set timeout=5$/m);
    expect(canvosGrubMenu({ timeout: 1 })).toMatch(/^set timeout=1$/m);
  });
});
