import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import { ARG_NAMES, type ArgName } from '../../src/provider/args.js';
import { parseArgText } from '../../src/provider/arg-file.js';
import {
  INVENTORY,
  applyInventory,
  argEntry,
  inventoryMarkdown,
  type InventoryScope,
} from '../../src/provider/inventory.js';
import type { BuildConfig } from '../../src/provider/resolve.js';
import { ARG_INFO } from '../../src/provider/schema.js';

const ALL: InventoryScope[] = ['base', 'provider', 'iso', 'iso-only'];

function collect(c: BuildConfig, scopes: InventoryScope[] = ALL): string[] {
  const out: string[] = [];
  applyInventory(c, scopes, (code, m) => out.push(`${code} ${m}`));
  return out;
}

/** A value of `name` other than CanvOS's default that the schema accepts. */
function nonDefault(name: ArgName): BuildConfig {
  const info = ARG_INFO.get(name)!;
  const candidates =
    info.kind === 'boolean'
      ? [info.default === 'true' ? 'false' : 'true']
      : info.kind === 'integer'
        ? [String(Number(info.default) + 1)]
        : info.kind === 'enum'
          ? (info.allowed ?? []).filter((v) => v !== info.default && v !== '')
          : ['7', 'example.com/x/y:1', 'x1'];
  for (const v of candidates) {
    try {
      return parseArgText(`${name}=${v}\n`);
    } catch {
      // try the next candidate
    }
  }
  throw new Error(`no valid non-default value for ${name}`);
}

describe('the CanvOS inventory', () => {
  it('has exactly one entry per ARG_NAMES argument, in that order, each with a status and both behaviours', () => {
    expect(INVENTORY.filter((e) => e.kind === 'arg').map((e) => e.name)).toEqual([...ARG_NAMES]);
    for (const e of INVENTORY) {
      expect(['honoured', 'refused', 'warned'], e.name).toContain(e.status);
      expect(e.canvos.length, e.name).toBeGreaterThan(3);
      expect(e.lite.length, e.name).toBeGreaterThan(3);
    }
    expect(new Set(INVENTORY.map((e) => e.name)).size).toBe(INVENTORY.length);
  });

  it('every refused or warned entry is enforced by a rule (its own, or the argument it is read through)', () => {
    for (const e of INVENTORY.filter((x) => x.status !== 'honoured')) {
      const rules = e.rules ?? (e.via ? argEntry(e.via)?.rules : undefined) ?? [];
      expect(rules.length, e.name).toBeGreaterThan(0);
      expect(
        rules.some((r) => r.status === e.status || e.via !== undefined),
        e.name,
      ).toBe(true);
      if (e.status === 'refused' || rules.some((r) => r.issue))
        expect(e.issue ?? rules.find((r) => r.issue)?.issue, e.name).toBeTruthy();
    }
  });

  it("README's table is the generated one (node scripts/inventory-table.mjs)", async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const m = /<!-- inventory:begin[^\n]*-->\n([\s\S]*?)\n<!-- inventory:end -->/.exec(readme);
    expect(m, 'README.md inventory markers').not.toBeNull();
    expect(m![1]).toBe(inventoryMarkdown());
  });

  it('CanvOS defaults (and .arg.template values) produce no refusal and no warning in any step', () => {
    expect(collect(parseArgText(''))).toEqual([]);
    const template =
      'CUSTOM_TAG=demo\nIMAGE_REGISTRY=ttl.sh\nOS_DISTRIBUTION=ubuntu\nIMAGE_REPO=$OS_DISTRIBUTION\nOS_VERSION=22.04\nK8S_DISTRIBUTION=k3s\nISO_NAME=palette-edge-installer\nARCH=amd64\nHTTPS_PROXY=\nHTTP_PROXY=\nUPDATE_KERNEL=false\nCLUSTERCONFIG=spc.tgz\nCIS_HARDENING=false\nEDGE_CUSTOM_CONFIG=.edge-custom-config.yaml\nFORCE_INTERACTIVE_INSTALL=false\n';
    expect(collect(parseArgText(template))).toEqual([]);
  });

  it('every warned argument set to a non-default value warns, naming it, with the file:line and the issue', () => {
    for (const e of INVENTORY.filter((x) => x.kind === 'arg' && x.status === 'warned')) {
      const name = e.name as ArgName;
      const w = collect(nonDefault(name));
      expect(w.length, name).toBeGreaterThan(0);
      expect(w[0], name).toMatch(
        new RegExp(`^W_(ARG_NO_EFFECT|EXEC_STEP_SKIPPED) \\.arg:1: ${name}=\\S+ has no effect in canvos-lite: `),
      );
      if (e.issue) expect(w[0], name).toContain(`(issue ${e.issue})`);
    }
  });

  it('refused arguments throw ERR_CONFIG (exit 3) with a hint naming the issue; MAAS/cloud images only for the ISO', () => {
    const refusal = (text: string, scopes: InventoryScope[]): CanvosError => {
      try {
        applyInventory(parseArgText(text), scopes);
      } catch (e) {
        return e as CanvosError;
      }
      throw new Error(`${text} was not refused for ${scopes.join(',')}`);
    };
    // IS_UKI is built (test/uki/config-build.test.ts): no refusal; arm64 ISOs fall back to the plain ISO, loudly
    expect(() => applyInventory(parseArgText('IS_UKI=true\n'), ['base', 'provider', 'iso'])).not.toThrow();
    expect(collect(parseArgText('IS_UKI=true\nARCH=arm64\n'), ['base', 'iso'])).toEqual([
      'W_UKI_ARM64 .arg:1: IS_UKI=true has no effect in canvos-lite: CanvOS builds the UKI ISO on amd64 only; on arm64 it builds the plain installer ISO, and so does canvos-lite (issue #16 UKI)',
    ]);
    const maas = refusal('IS_MAAS=true\n', ['base', 'iso', 'iso-only']);
    expect(maas.message).toBe(
      ".arg:1: IS_MAAS=true is not supported by canvos-lite: IS_MAAS=true asks for CanvOS's MAAS disk image (+maas-image), not the installer ISO",
    );
    expect(maas.hint).toContain('canvos-lite disk');
    expect(maas.hint).toContain('#17');
    expect(refusal('IS_CLOUD_IMAGE=true\n', ['iso-only']).hint).toContain('#17');
    // The disk images are built from the same rootfs (scope iso) without the ISO-only refusals.
    expect(collect(parseArgText('IS_MAAS=true\nIS_CLOUD_IMAGE=true\n'), ['base', 'iso'])).toEqual([]);
    expect(collect(parseArgText('IS_MAAS=true\nIS_CLOUD_IMAGE=true\n'), ['base', 'provider'])).toEqual([
      'W_ARG_NO_EFFECT .arg:2: IS_CLOUD_IMAGE=true has no effect in canvos-lite: it only shapes the cloud raw image (canvos-lite disk / build-all), not provider images (issue #17 disk/MAAS/cloud images)',
    ]);
  });

  it('steps switched on by a combination of arguments warn too (nodeadm install); the kubeadm kernel headers run', () => {
    expect(collect(parseArgText('K8S_DISTRIBUTION=kubeadm\n'), ['base', 'provider'])).toEqual([]);
    expect(collect(parseArgText('UPDATE_KERNEL=true\n'), ['base', 'provider'])).toEqual([]); // runs through the executor
    expect(
      collect(parseArgText('UPDATE_KERNEL=true\nOS_DISTRIBUTION=opensuse-leap\nOS_VERSION=15.6\n'), [
        'base',
        'provider',
      ]),
    ).toEqual([
      "W_EXEC_STEP_SKIPPED .arg:1: UPDATE_KERNEL=true has no effect in canvos-lite: CanvOS's SUSE/RHEL kernel-devel headers step (760–791) is not run (on opensuse-leap/amd64 the kernel upgrade itself is); canvos-lite runs the project Dockerfile's RUN lines, UPDATE_KERNEL, the kernel headers step and TWO_NODE, not this CanvOS step: add it to the project Dockerfile as a RUN line, or pre-bake it into BASE_IMAGE (issue #11 Dockerfile/RUN)",
    ]);
    expect(collect(parseArgText('K8S_DISTRIBUTION=nodeadm\n'), ['base', 'provider'])[0]).toMatch(
      /nodeadm install -p iam-ra/,
    );
    expect(collect(parseArgText('K8S_DISTRIBUTION=nodeadm\n'), ['base', 'iso'])).toEqual([]);
  });
});
