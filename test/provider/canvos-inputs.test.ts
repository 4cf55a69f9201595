/** CanvOS input semantics that need no image: OS_VERSION per distribution, ISO_NAME, CLUSTERCONFIG, Jetson/MAAS files. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import { parseArgText } from '../../src/provider/arg-file.js';
import { installerIsoInputs } from '../../src/provider/installer-iso.js';
import { tmpDir } from '../helpers/tools.js';

let tmp: Awaited<ReturnType<typeof tmpDir>>;
beforeAll(async () => {
  tmp = await tmpDir('canvos-inputs-');
});
afterAll(async () => tmp?.cleanup());

function configError(text: string): CanvosError {
  try {
    parseArgText(text);
  } catch (e) {
    return e as CanvosError;
  }
  throw new Error(`${text} was accepted`);
}

describe('CanvOS inputs', () => {
  it('OS_VERSION is validated per distribution, naming the key and the allowed values (exit 3)', () => {
    for (const v of ['20', '22', '20.04', '22.04', '24.04'])
      expect(parseArgText(`OS_VERSION=${v}\n`).osVersion).toBe(v);
    const ubuntu = configError('OS_VERSION=23.10\n');
    expect(ubuntu.code).toBe('ERR_CONFIG');
    expect(ubuntu.message).toBe(
      '.arg:1: OS_VERSION="23.10" is invalid: must be one of 20, 22, 20.04, 22.04, 24.04 for ubuntu (or set BASE_IMAGE)',
    );
    expect(parseArgText('OS_DISTRIBUTION=opensuse-leap\nOS_VERSION=15.6\n').osVersion).toBe('15.6');
    // No OS_VERSION: the Ubuntu default 22.04 is not a Leap release (it used to become leap-22.04 and fail late).
    const leap = configError('OS_DISTRIBUTION=opensuse-leap\n');
    expect(leap.message).toBe(
      "OS_VERSION is invalid: must be 15.<minor> for opensuse-leap, e.g. 15.6 (22.04 is CanvOS's Ubuntu default)",
    );
    expect(configError('OS_DISTRIBUTION=opensuse-leap\nOS_VERSION=22.04\n').message).toMatch(
      /^\.arg:2: OS_VERSION="22\.04" is invalid: must be 15\.<minor>/,
    );
    expect(configError('OS_DISTRIBUTION=opensuse-leap\nOS_VERSION=16.0\n').message).toMatch(
      /16\.0 is not a Leap 15 release/,
    );
  });

  it('ISO_NAME defaults to palette-edge-installer (the template and docs; the Earthfile says installer)', () => {
    expect(parseArgText('').isoName).toBe('palette-edge-installer');
    expect(parseArgText('ISO_NAME=installer\n').isoName).toBe('installer');
  });

  it('CLUSTERCONFIG naming a missing file warns and is left out (CanvOS COPY --if-exists; .arg.template has spc.tgz)', async () => {
    const project = join(tmp.path, 'p1');
    await mkdir(project);
    const warnings: string[] = [];
    const c = parseArgText('CLUSTERCONFIG=spc.tgz\n', '/x/.arg');
    const r = await installerIsoInputs(c, {
      projectDir: project,
      onWarning: (code, m) => warnings.push(`${code} ${m}`),
    });
    expect(r.clusterConfig).toBeUndefined();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^W_CLUSTERCONFIG_MISSING /);
    expect(warnings[0]).toContain(`${join(project, 'spc.tgz')} does not exist`);
    await writeFile(join(project, 'spc.tgz'), 'spc');
    const present = await installerIsoInputs(c, { projectDir: project, onWarning: (code) => warnings.push(code) });
    expect(present.clusterConfig).toBe(join(project, 'spc.tgz'));
    expect(warnings).toHaveLength(1);
  });

  it('EDGE_CUSTOM_CONFIG: the default name may be absent silently; a name written explicitly but missing warns', async () => {
    const project = join(tmp.path, 'p2');
    await mkdir(project);
    const warnings: string[] = [];
    const onWarning = (code: string, m: string) => warnings.push(`${code} ${m}`);
    expect(
      (
        await installerIsoInputs(parseArgText('EDGE_CUSTOM_CONFIG=.edge-custom-config.yaml\n'), {
          projectDir: project,
          onWarning,
        })
      ).edgeCustomConfig,
    ).toBeUndefined();
    expect(warnings).toEqual([]);
    await installerIsoInputs(parseArgText('EDGE_CUSTOM_CONFIG=keys/edge.yaml\n'), { projectDir: project, onWarning });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^W_EDGE_CUSTOM_CONFIG_MISSING /);
    expect(warnings[0]).toContain(`${join(project, 'keys/edge.yaml')} does not exist`);
  });

  it('IS_MAAS / IS_CLOUD_IMAGE ISOs are refused before anything is read (exit 3, issue in the hint)', async () => {
    for (const [arg, issue] of [
      ['IS_MAAS=true', '#17'],
      ['IS_CLOUD_IMAGE=true', '#17'],
    ] as const) {
      const e = await installerIsoInputs(parseArgText(`${arg}\n`), { projectDir: tmp.path }).then(
        () => undefined,
        (x: unknown) => x as CanvosError,
      );
      expect(e?.code, arg).toBe('ERR_CONFIG');
      expect(e?.hint, arg).toContain(issue);
    }
  });
});
