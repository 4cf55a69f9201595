/**
 * GRUB configuration texts of the installer ISO: AuroraBoot's three chainload stubs (they locate the ISO by
 * /boot/kernel and hand over to /boot/grub2/grub.cfg) and the CanvOS boot menu at /boot/grub2/grub.cfg
 * (entries per canvos.md §3.4; default entry 0, or 2 "Interactive Installer" with FORCE_INTERACTIVE_INSTALL).
 */

/** AuroraBoot's GrubEfiCfg: written to EFI/BOOT/grub.cfg, boot/grub/grub.cfg (and EFI/ubuntu/grub.cfg). */
export const GRUB_CHAINLOAD_CFG =
  'search --no-floppy --file --set=root /boot/kernel\nset prefix=($root)/boot/grub2\nconfigfile $prefix/grub.cfg\n';

/** Kernel command-line words DEBUG adds (CanvOS Earthfile build-iso). */
export const DEBUG_CMDLINE = 'rd.immucore.debug console=tty0 rd.debug';

/** Options of {@link canvosGrubMenu}. */
export interface GrubMenuOptions {
  /** Boot the "Palette Edge Interactive Installer" entry (index 2) by default. Default: false. */
  forceInteractive?: boolean | undefined;
  /** Append {@link DEBUG_CMDLINE} to every entry. Default: false. */
  debug?: boolean | undefined;
  /** Menu timeout in seconds. Default: 5. */
  timeout?: number | undefined;
  /** Extra kernel command-line words for every entry. Default: none. */
  extraCmdline?: string | undefined;
}

/** The menu template; `{{DEFAULT_ENTRY}}` and `{{EXTRA}}` are substituted by {@link canvosGrubMenu}. */
const MENU = `search --no-floppy --file --set=root /boot/kernel
set default={{DEFAULT_ENTRY}}
set timeout={{TIMEOUT}}
set timeout_style=menu
# Mirror the menu on the first serial port (headless edge boxes, VMs); harmless without one.
if serial --unit=0 --speed=115200; then
    terminal_input --append serial
    terminal_output --append serial
fi
if [ "\${grub_platform}" = "efi" ]; then
    set consoleparams="console=ttyS0,115200n8 console=tty0"
    set videoparams=""
else
    set consoleparams="console=tty1 console=ttyS0,115200"
    set videoparams="vga=795 nomodeset"
fi
set baseparams="cdroot root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs net.ifnames=1"
set tailparams="selinux=0 rd.live.overlay.overlayfs rd.immucore.sysrootwait=600 systemd.unified_cgroup_hierarchy=1 rd.driver.blacklist=nouveau,qat_4xxx modprobe.blacklist=nouveau,qat_4xxx nouveau.modeset=0{{EXTRA}}"
# Menu entries run in their own context: only exported variables reach them.
export consoleparams videoparams baseparams tailparams

menuentry "Palette eXtended Kubernetes Edge Installer" --class os --unrestricted {
    echo Loading kernel...
    linux ($root)/boot/kernel $baseparams $consoleparams rd.cos.disable $videoparams nodepair.enable $tailparams
    echo Loading initrd...
    initrd ($root)/boot/initrd
}

menuentry "Palette eXtended Kubernetes Edge Installer (manual)" --class os --unrestricted {
    echo Loading kernel...
    linux ($root)/boot/kernel $baseparams $consoleparams rd.cos.disable $videoparams $tailparams
    echo Loading initrd...
    initrd ($root)/boot/initrd
}

menuentry "Palette Edge Interactive Installer" --class os --unrestricted {
    echo Loading kernel...
    linux ($root)/boot/kernel $baseparams $consoleparams rd.cos.disable $videoparams interactive-install $tailparams
    echo Loading initrd...
    initrd ($root)/boot/initrd
}

if [ "\${grub_platform}" = "efi" ]; then
    hiddenentry "Text mode" --hotkey "t" {
        set textmode=true
        terminal_output console
    }
fi
`;

/** The CanvOS menu for /boot/grub2/grub.cfg. */
export function canvosGrubMenu(opts: GrubMenuOptions = {}): string {
  const extra = [opts.debug ? DEBUG_CMDLINE : '', opts.extraCmdline ?? ''].filter((s) => s.trim() !== '').join(' ');
  return MENU.replace('{{DEFAULT_ENTRY}}', opts.forceInteractive ? '2' : '0')
    .replace('{{TIMEOUT}}', String(opts.timeout ?? 5))
    .replace('{{EXTRA}}', extra ? ` ${extra}` : '');
}
