/**
 * GRUB configuration texts of the installer ISO: AuroraBoot's three chainload stubs (they locate the ISO by
 * /boot/kernel and hand over to /boot/grub2/grub.cfg) and the CanvOS boot menu at /boot/grub2/grub.cfg.
 *
 * The built-in menu is CanvOS's `overlay/files-iso/boot/grub2/grub.cfg` (canvos.md §3.4; CanvOS main fb36e29)
 * without its comments. A project's own `overlay/files-iso/boot/grub2/grub.cfg` replaces it. Either text then
 * gets exactly CanvOS's two `sed` edits (Earthfile build-iso): every `{{DEFAULT_ENTRY}}` becomes `2` with
 * FORCE_INTERACTIVE_INSTALL, else `0`; with DEBUG every line containing `rd.immucore.sysrootwait` gets
 * {@link DEBUG_CMDLINE} appended.
 */

/** AuroraBoot's GrubEfiCfg: written to EFI/BOOT/grub.cfg, boot/grub/grub.cfg (and EFI/ubuntu/grub.cfg). */
export const GRUB_CHAINLOAD_CFG =
  'search --no-floppy --file --set=root /boot/kernel\nset prefix=($root)/boot/grub2\nconfigfile $prefix/grub.cfg\n';

/** Kernel command-line words DEBUG adds (CanvOS Earthfile build-iso). */
export const DEBUG_CMDLINE = 'rd.immucore.debug console=tty0 rd.debug';

/** Options of {@link canvosGrubMenu} and {@link applyGrubEdits}. */
export interface GrubMenuOptions {
  /** `{{DEFAULT_ENTRY}}` → 2 (the "Palette Edge Interactive Installer" entry) instead of 0. Default: false. */
  forceInteractive?: boolean | undefined;
  /** Append {@link DEBUG_CMDLINE} to every line containing `rd.immucore.sysrootwait`. Default: false. */
  debug?: boolean | undefined;
  /**
   * Menu timeout in seconds, replacing the value of a `set timeout=N` line (tests boot with 1). Default: keep the
   * menu's own (CanvOS: 5).
   */
  timeout?: number | undefined;
}

const KERNEL_PARAMS =
  'cdroot root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs net.ifnames=1 $consoleparams rd.cos.disable';
const TAIL_PARAMS =
  'selinux=0 rd.live.overlay.overlayfs rd.immucore.sysrootwait=600 systemd.unified_cgroup_hierarchy=1 rd.driver.blacklist=nouveau,qat_4xxx modprobe.blacklist=nouveau,qat_4xxx nouveau.modeset=0';

const entry = (title: string, params: string): string => `menuentry "${title}" --class os --unrestricted {
    echo Loading kernel...
    $linux ($root)/boot/kernel ${params}
    echo Loading initrd...
    $initrd ($root)/boot/initrd
}
`;

/** CanvOS's files-iso grub.cfg (comments left out), with its `{{DEFAULT_ENTRY}}` placeholder. */
export const CANVOS_GRUB_TEMPLATE: string = `search --no-floppy --file --set=root /boot/kernel
set default={{DEFAULT_ENTRY}}
set timeout=5
set timeout_style=menu
set linux=linux
set initrd=initrd

if [ "\${grub_platform}" = "efi" ]; then
    set consoleparams="console=ttyS0,115200n8 console=tty0"
    set videoparams=""
else
    set consoleparams="console=tty1 console=ttyS0"
    set videoparams="vga=795 nomodeset"
fi

if [ "\${grub_platform}" != "efi" ]; then
    set font=($root)/boot/\${grub_cpu}/loader/grub2/fonts/unicode.pf2
    if [ -f \${font} ];then
        loadfont \${font}
    fi
fi

${entry('Palette eXtended Kubernetes Edge Installer', `${KERNEL_PARAMS} $videoparams nodepair.enable ${TAIL_PARAMS}`)}
${entry('Palette eXtended Kubernetes Edge Installer (manual)', `${KERNEL_PARAMS} ${TAIL_PARAMS}`)}
${entry('Palette Edge Interactive Installer', `${KERNEL_PARAMS} $videoparams nodepair.enable ${TAIL_PARAMS} interactive-install`)}
if [ "\${grub_platform}" = "efi" ]; then
    hiddenentry "Text mode" --hotkey "t" {
        set textmode=true
        terminal_output console
    }
fi
`;

/**
 * CanvOS's edits of a files-iso grub.cfg: `sed 's/{{DEFAULT_ENTRY}}/N/g'` and, with `debug`,
 * `sed -i '/rd.immucore.sysrootwait/s/$/ <DEBUG_CMDLINE>/'` (the pattern's dots match any character, as in sed).
 */
export function applyGrubEdits(text: string, opts: GrubMenuOptions = {}): string {
  let out = text.replaceAll('{{DEFAULT_ENTRY}}', opts.forceInteractive ? '2' : '0');
  if (opts.debug) {
    out = out
      .split('\n')
      .map((l) => (/rd.immucore.sysrootwait/.test(l) ? `${l} ${DEBUG_CMDLINE}` : l))
      .join('\n');
  }
  if (opts.timeout !== undefined) out = out.replace(/^set timeout=\d+$/m, `set timeout=${opts.timeout}`);
  return out;
}

/** The built-in CanvOS menu for /boot/grub2/grub.cfg, edited as CanvOS does. */
export function canvosGrubMenu(opts: GrubMenuOptions = {}): string {
  return applyGrubEdits(CANVOS_GRUB_TEMPLATE, opts);
}
