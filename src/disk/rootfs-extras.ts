/**
 * The files CanvOS's `iso-image` adds to the installer rootfs for its disk flavours (canvos.md §1.7 step 4), read
 * from the project as CanvOS reads them from its checkout (plain `COPY`, so a missing file fails the build):
 * IS_CLOUD_IMAGE adds the Palette reset/registration GRUB menu, the post-reset stages and the two cloud scripts
 * (content extraction from COS_CONTENT, growing COS_PERSISTENT); IS_MAAS adds the MAAS content script.
 * local-ui.tar is extracted by the installer rootfs itself (both flavours and the ISO do that).
 */
import { resolve } from 'node:path';
import type { PlannedItem } from '../provider/plan-types.js';

/** The configuration switches that choose the extras. */
export interface RootfsExtrasConfig {
  isCloudImage: boolean;
  isMaas: boolean;
}

/** [project path, rootfs path, mode] of each extra, in CanvOS's order. */
const CLOUD: readonly (readonly [string, string, number | undefined])[] = [
  ['cloud-images/workaround/grubmenu.cfg', '/etc/kairos/branding/grubmenu.cfg', undefined],
  ['cloud-images/workaround/custom-post-reset.yaml', '/system/oem/custom-post-reset.yaml', undefined],
  ['cloudconfigs/cloud-content.sh', '/opt/spectrocloud/scripts/cloud-content.sh', 0o755],
  ['cloudconfigs/cloud-extend-persistent.sh', '/opt/spectrocloud/scripts/cloud-extend-persistent.sh', 0o755],
];
const MAAS: readonly (readonly [string, string, number | undefined])[] = [
  ['cloudconfigs/maas-content.sh', '/opt/spectrocloud/scripts/maas-content.sh', 0o755],
];

/** The planned copies of the flavour extras of `config` (none for an ordinary ISO). */
export function rootfsExtraItems(config: RootfsExtrasConfig, projectDir: string): PlannedItem[] {
  const items: PlannedItem[] = [];
  const add = (list: typeof CLOUD, arg: string): void => {
    for (const [from, to, mode] of list) {
      items.push({
        op: 'copy',
        source: { kind: 'host-file', path: resolve(projectDir, from) },
        target: to,
        ...(mode === undefined ? {} : { mode }),
        missingHint: `${arg}=true, so CanvOS copies ${from} to ${to}: copy it from CanvOS's ${from.slice(0, from.lastIndexOf('/') + 1)} (or set ${arg}=false)`,
      });
    }
  };
  if (config.isCloudImage) add(CLOUD, 'IS_CLOUD_IMAGE');
  if (config.isMaas) add(MAAS, 'IS_MAAS');
  return items;
}
