#!/usr/bin/env node
// The demo: builds CanvOS provider images offline. It first generates small Kairos-like input images as OCI
// layouts (a multi-arch base, the k3s agent provider, the stylus framework, third-party binaries, and one k3s
// package image per version) with canvos-lite's own layer builder, then runs `canvos-lite build` on
// fixtures/demo/project/canvos.yaml, writing the provider images into build/provider-images (an OCI layout).
import { mkdir, rm } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
// The package by name: the repo itself (self-reference) or, copied into a project, the installed canvos-lite
// (test/package.test.ts runs it against the packed tarball).
import { buildLayer, OciLayout, MediaType } from 'canvos-lite';

const root = new URL('..', import.meta.url).pathname;
const pkg = dirname(createRequire(import.meta.url).resolve('canvos-lite/package.json'));
const images = join(root, 'build/demo/images');
const EPOCH = 1700000000;

/** Write one image (one layer of `files`) per platform into an OCI layout, tagged. */
async function writeImage(name, tag, files, platforms = ['amd64']) {
  const layout = new OciLayout(join(images, name));
  await layout.init();
  const manifests = [];
  for (const arch of platforms) {
    const entries = Object.entries(typeof files === 'function' ? files(arch) : files).map(([path, f]) =>
      f.symlink
        ? { type: 'symlink', path, target: f.symlink }
        : { type: 'file', path, source: { inline: f.data ?? f }, mode: f.mode ?? 0o644 },
    );
    const layer = await buildLayer({ entries }, { dir: join(layout.blobsDir, 'sha256'), sourceDateEpoch: EPOCH });
    const config = Buffer.from(
      JSON.stringify({
        created: new Date(EPOCH * 1000).toISOString(),
        architecture: arch,
        os: 'linux',
        config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
        rootfs: { type: 'layers', diff_ids: [layer.diffId] },
        history: [{ created: new Date(EPOCH * 1000).toISOString(), created_by: `canvos-lite demo fixture ${name}` }],
      }),
    );
    const configDigest = await layout.writeSmallBlob(config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: configDigest, size: config.length },
        layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
      }),
    );
    const digest = await layout.writeSmallBlob(manifest);
    manifests.push({
      mediaType: MediaType.OciManifest,
      digest,
      size: manifest.length,
      platform: { architecture: arch, os: 'linux' },
    });
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }));
  const digest = await layout.writeSmallBlob(index);
  await layout.setTag({ mediaType: MediaType.OciIndex, digest, size: index.length }, tag);
  return `oci:${join('build/demo/images', name)}:${tag}`;
}

const exe = (s) => ({ data: `#!/bin/sh\n${s}\n`, mode: 0o755 });
const K3S = ['1.29.8', '1.30.4', '1.31.2'];

await rm(join(root, 'build/demo'), { recursive: true, force: true });
await rm(join(root, 'build/provider-images'), { recursive: true, force: true });
await mkdir(images, { recursive: true });
console.error('demo: generating input images under build/demo/images …');
await writeImage(
  'kairos-base',
  '22.04',
  (arch) => ({
    'etc/kairos-release': `KAIROS_ID="kairos"\nKAIROS_NAME="kairos-core-ubuntu-22.04"\nKAIROS_VERSION="v4.1.2"\nKAIROS_ARCH="${arch}"\nKAIROS_FLAVOR="ubuntu"\nKAIROS_IMAGE_LABEL="22.04-core-${arch}-generic-v0.17.1"\n`,
    'etc/os-release': 'NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\n',
    'etc/cos/bootargs.cfg':
      'set kernel=/boot/vmlinuz\nset baseCmd="console=tty1 console=ttyS0 security=selinux selinux=1 panic=5"\nset initramfs=/boot/initrd\n',
    'etc/ssh/ssh_host_rsa_key': { data: 'demo private key\n', mode: 0o600 },
    'etc/ssh/ssh_host_rsa_key.pub': 'demo public key\n',
    'etc/ssh/ssh_host_ed25519_key': { data: 'demo private key\n', mode: 0o600 },
    'etc/ssh/moduli': 'demo moduli\n',
    'etc/ssh/sshd_config': 'PermitRootLogin no\n',
    'etc/machine-id': '0123456789abcdef0123456789abcdef\n',
    'etc/ssl/certs/ca-certificates.crt': '-----BEGIN CERTIFICATE-----\nDEMO\n-----END CERTIFICATE-----\n',
    'usr/bin/kairos-agent': exe('echo kairos-agent demo'),
    [`usr/lib/${arch === 'amd64' ? 'x86_64' : 'aarch64'}-linux-gnu/systemd/libsystemd-shared-249.so`]:
      'not a real library\n',
  }),
  ['amd64', 'arm64'],
);
await writeImage('provider-k3s', 'v4.10.3', {
  'usr/local/system/providers/agent-provider-k3s': exe('echo agent-provider-k3s demo'),
  'opt/k3s/scripts/install.sh': exe('echo install k3s'),
});
await writeImage('stylus-framework', 'v4.9.38', {
  'etc/kairos/branding/interactive_install_text': 'Palette eXtended Kubernetes Edge (demo)\n',
  'etc/kairos/80_stylus.yaml': 'stages: {}\n',
  'oem/stylus_config.yaml': 'stylus:\n  site: {}\n',
  'etc/elemental/config.yaml': 'install: {}\n',
});
await writeImage('spectro-third-party', '4.8', {
  'binaries/etcdctl/latest/palette/amd64/etcdctl': exe('echo etcdctl demo'),
});
for (const v of K3S) {
  await writeImage('k3s', `${v}-k3s1`, {
    'usr/bin/k3s': exe(`echo k3s v${v}+k3s1 demo`),
    'etc/systemd/system/k3s.service': `[Unit]\nDescription=k3s v${v}\n[Service]\nExecStart=/usr/bin/k3s server\n`,
  });
}

console.error('demo: canvos-lite build → build/provider-images');
const r = spawnSync(
  process.execPath,
  [
    join(pkg, 'bin/canvos-lite.js'),
    'build',
    '--config',
    'fixtures/demo/project/canvos.yaml',
    '--k8s-versions',
    'fixtures/demo/project/k8s_version.json',
    '--project-dir',
    'fixtures/demo/project',
    '--output',
    'oci:build/provider-images',
  ],
  { cwd: root, stdio: 'inherit', env: { ...process.env, SOURCE_DATE_EPOCH: String(EPOCH) } },
);
if (r.status !== 0) process.exit(r.status ?? 1);
console.error(`demo: done. Inspect with: skopeo inspect oci:build/provider-images:k3s-1.30.4-v4.9.38-demo`);
