/**
 * Test inputs for provider builds: a multi-arch Kairos-like base and small stand-ins for the Spectro images
 * (agent provider, stylus framework, third-party binaries, luet k8s packages), pushed into a real registry with the
 * independent fixture writers of test/helpers, plus a CanvOS-like project directory (overlay, certs, edge config).
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeOciLayout } from '../helpers/fixtures.js';
import { pushLayout } from '../helpers/push-layout.js';
import type { TestRegistry } from '../helpers/registry.js';

export const BASE_FILES: Record<string, string> = {
  'etc/kairos-release':
    'KAIROS_ID="kairos"\nKAIROS_NAME="kairos-core-ubuntu-22.04"\nKAIROS_IMAGE_LABEL="22.04-core-amd64-generic-v0.17.1"\nKAIROS_VERSION="v4.1.2"\n',
  'etc/cos/bootargs.cfg':
    'set kernel=/boot/vmlinuz\nset baseCmd="console=tty1 security=selinux selinux=1 panic=5"\nset initramfs=/boot/initrd\n',
  'etc/ssh/ssh_host_rsa_key': 'PRIVATE\n',
  'etc/ssh/ssh_host_rsa_key.pub': 'PUBLIC\n',
  'etc/ssh/ssh_host_ed25519_key': 'PRIVATE2\n',
  'etc/ssh/moduli': 'MODULI\n',
  'etc/ssh/sshd_config': 'PermitRootLogin no\n',
  'etc/ssl/certs/ca-certificates.crt': '-----BEGIN CERTIFICATE-----\nBASE\n-----END CERTIFICATE-----\n',
  'etc/machine-id': '0123456789abcdef\n',
  'var/lib/dbus/machine-id': '0123456789abcdef\n',
  'usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-249.so': 'ELF',
};

export const K3S_VERSIONS = ['1.29.8', '1.30.4', '1.31.2'];

/** Names of everything pushed, for the .arg file. */
export interface FixtureRefs {
  base: string;
  baseDigests: { amd64: string[]; arm64: string[] };
  argLines: string;
}

const BOTH = ['linux/amd64', 'linux/arm64'];

async function push(
  reg: TestRegistry,
  dir: string,
  repoTag: string,
  files: Record<string, string>,
  platforms = BOTH,
): Promise<Awaited<ReturnType<typeof makeOciLayout>>> {
  const [repo, tag] = repoTag.split(':') as [string, string];
  const r = await makeOciLayout(join(dir, repo.replaceAll('/', '_') + '-' + tag), {
    platforms,
    layers: platforms.length > 1 ? 2 : 1,
    layerBytes: 2048,
    files,
    tag,
  });
  await pushLayout(join(dir, repo.replaceAll('/', '_') + '-' + tag), reg, repo, { tag });
  return r;
}

/** Push every image a k3s provider build reads; returns the references and the matching `.arg` lines. */
export async function pushFixtureImages(
  reg: TestRegistry,
  dir: string,
  opts: { baseFiles?: Record<string, string> } = {},
): Promise<FixtureRefs> {
  const h = reg.host;
  const base = await push(reg, dir, 'kairos/base:22.04', opts.baseFiles ?? BASE_FILES);
  await push(reg, dir, 'edge/kairos-io/provider-k3s:v4.10.3', {
    'usr/local/system/providers/agent-provider-k3s': '#!agent-provider-k3s\n',
    'opt/k3s/scripts/install.sh': '#!/bin/sh\necho k3s\n',
  });
  for (const arch of ['amd64', 'arm64'])
    await push(
      reg,
      dir,
      `edge/stylus-framework-linux-${arch}:v4.9.38`,
      {
        'etc/kairos/branding/grub_menu.cfg': 'menu\n',
        'etc/kairos/branding/interactive_install_text': 'Palette\n',
        'etc/kairos/80_stylus.yaml': 'stages: {}\n',
        'oem/stylus_config.yaml': 'stylus: {}\n',
        'etc/elemental/config.yaml': 'install: {}\n',
        'opt/spectrocloud/bin/stylus-agent': 'not copied into provider images\n',
      },
      [`linux/${arch}`],
    );
  await push(reg, dir, 'third-party/spectro-third-party:4.8', {
    'binaries/etcdctl/latest/palette/amd64/etcdctl': '#!etcdctl\n',
    'binaries/etcdctl/latest/palette/arm64/etcdctl': '#!etcdctl arm64\n',
  });
  await push(reg, dir, 'third-party/amd64-only:1', { 'binaries/etcdctl/latest/palette/arm64/etcdctl': 'x\n' }, [
    'linux/amd64',
  ]);
  for (const [luet, versions] of [
    ['amd', K3S_VERSIONS],
    ['arm', ['1.30.4']],
  ] as const) {
    for (const v of versions) {
      await push(
        reg,
        dir,
        `edge/luet-repo-${luet}:k3s-k8s-${v}-k3s1`,
        {
          'usr/bin/k3s': `k3s ${v} ${luet}\n`,
          'etc/systemd/system/k3s.service': `[Unit]\nDescription=k3s ${v}\n`,
          'var/cache/luet/junk': 'cache\n',
        },
        [luet === 'amd' ? 'linux/amd64' : 'linux/arm64'],
      );
    }
  }
  return {
    base: `${h}/kairos/base:22.04`,
    baseDigests: { amd64: base.images[0]!.layerDigests, arm64: base.images[1]!.layerDigests },
    argLines: [
      'CUSTOM_TAG=demo',
      `IMAGE_REGISTRY=${h}/out`,
      'OS_DISTRIBUTION=ubuntu',
      'IMAGE_REPO=$OS_DISTRIBUTION',
      'OS_VERSION=22.04',
      'K8S_DISTRIBUTION=k3s',
      'ARCH=amd64',
      'PE_VERSION=v4.9.38',
      `SPECTRO_PUB_REPO=${h}`,
      `SPECTRO_LUET_REPO=${h}/edge`,
      `SPECTRO_THIRD_PARTY_IMAGE=${h}/third-party/spectro-third-party:4.8`,
      `BASE_IMAGE=${h}/kairos/base:22.04`,
      '',
    ].join('\n'),
  };
}

/** A CanvOS-like project directory: overlay/files/etc, certs/, .edge-custom-config.yaml, k8s_version.json. */
export async function makeProject(dir: string, argLines: string): Promise<void> {
  await mkdir(join(dir, 'overlay/files/etc/logrotate.d'), { recursive: true });
  await mkdir(join(dir, 'overlay/files/etc/rsyslog.d'), { recursive: true });
  await writeFile(join(dir, 'overlay/files/etc/logrotate.d/stylus.conf'), '/var/log/stylus-audit.log {\n  yearly\n}\n');
  await chmod(join(dir, 'overlay/files/etc/logrotate.d/stylus.conf'), 0o600); // CanvOS chmods it to 644
  await writeFile(
    join(dir, 'overlay/files/etc/rsyslog.d/49-stylus.conf'),
    'if $programname == "stylus" then /var/log/stylus.log\n',
  );
  await mkdir(join(dir, 'certs'));
  await writeFile(join(dir, 'certs/corp-proxy.crt'), '-----BEGIN CERTIFICATE-----\nCORP\n-----END CERTIFICATE-----');
  await writeFile(join(dir, 'certs/README.md'), 'not a certificate\n');
  await writeFile(
    join(dir, '.edge-custom-config.yaml'),
    'content:\n  signing:\n    publicKey:\n      base64EncodedValue: "AAAA"\n',
  );
  await writeFile(join(dir, 'k8s_version.json'), JSON.stringify({ k3s: K3S_VERSIONS, rke2: ['1.30.4'] }));
  await writeFile(join(dir, '.arg'), argLines);
}

/** The tags of `repo` in the test registry ([] when the repository does not exist). */
export async function registryTags(reg: TestRegistry, repo: string): Promise<string[]> {
  const res = await fetch(`${reg.url}/v2/${repo}/tags/list`);
  if (res.status === 404) return [];
  return ((await res.json()) as { tags: string[] | null }).tags ?? [];
}
