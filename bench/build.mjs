/**
 * Bench 2, append a layer to a base and push: 3 versions, each one new payload file (a slice of a tar of /usr)
 * appended to the same base (random data), pushed to a registry that already holds the base. Ours: the provider
 * build's path in one process (lib/provider-append.mjs: layers built in turn and uploaded as built, then each
 * version's manifest through the copy engine, base layers mounted across repositories; compiled library). Theirs: `umoci insert` into an OCI layout copy of the base, then `skopeo copy oci:… docker://…`.
 * A counting proxy in front of the registry measures the bytes each side uploads, and how many of them are base bytes.
 */
import { cp, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { addImage } from './lib/layout.mjs';
import { runMeasured, runShell } from './lib/proc.mjs';
import { startCountingProxy } from './lib/proxy.mjs';
import { startRegistry } from './lib/registry.mjs';
import { BENCH_DIR, MiB, mbps, round, row, runIfMain, tmp } from './lib/util.mjs';

/**
 * Ours, `provider` (default): one process building the versions' layers in turn while the built ones upload, then
 * writing each version's image (lib/provider-append.mjs: the provider build's modules, as `canvos-lite build` runs
 * them). `append` (BENCH_BUILD_OURS=append, the earlier bench): one process per version, build then push
 * (lib/append.mjs). BENCH_BUILD_LEVEL sets the gzip level (default: the library's).
 */
async function runOurs(mode, { baseRef, proxy, payloads, work, env, log }) {
  const ours = { ms: 0, cpuS: 0, peakRssMB: 0, uploaded: [], versions: [] };
  const level = process.env.BENCH_BUILD_LEVEL ?? '-';
  const add = (r) => {
    ours.ms += r.ms;
    ours.cpuS += r.cpuS ?? NaN;
    ours.peakRssMB = Math.max(ours.peakRssMB, r.peakRssMB);
  };
  if (mode === 'provider') {
    log(`ours: ${payloads.length} versions in one provider build`);
    proxy.reset();
    const repo = `${proxy.host}/bench/ours`;
    const args = [join(BENCH_DIR, 'lib', 'provider-append.mjs'), baseRef, repo, join(work, 'ours'), level, ...payloads];
    const r = await runMeasured(
      process.execPath,
      [...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []), ...args],
      { env },
    );
    const out = JSON.parse(r.stdout.trim().split('\n').pop());
    add(r);
    ours.uploaded.push(proxy.uploadedBytes());
    const newBytes = out.layers.reduce((n, l) => n + l.size, 0) + out.metaBytes;
    ours.versions.push({ ms: round(r.ms, 0), ...out, baseBytesUploaded: proxy.uploadedBytes() - newBytes });
    return ours;
  }
  for (const [i, payload] of payloads.entries()) {
    const v = i + 1;
    log(`ours: append v${v}`);
    proxy.reset();
    const r = await runMeasured(
      process.execPath,
      [
        join(BENCH_DIR, 'lib', 'append.mjs'),
        baseRef,
        `${proxy.host}/bench/ours:v${v}`,
        payload,
        join(work, `ours-${v}`),
      ],
      { env },
    );
    const out = JSON.parse(r.stdout.trim().split('\n').pop());
    add(r);
    ours.uploaded.push(proxy.uploadedBytes());
    // Whatever was uploaded beyond the new layer, its config and the manifest are base bytes.
    ours.versions.push({
      ms: round(r.ms, 0),
      ...out,
      baseBytesUploaded: proxy.uploadedBytes() - out.layer.size - out.configSize - out.manifestSize,
    });
  }
  return ours;
}

/** Run the build bench. Full: 1 GiB base (4 × 256 MiB layers) + 3 × 200 MiB appends. Quick: 64 MiB base + 3 × 16 MiB. */
export async function benchBuild({ quick = false, log = () => {} } = {}) {
  const mode = process.env.BENCH_BUILD_OURS === 'append' ? 'append' : 'provider';
  const baseLayers = 4;
  const baseLayerBytes = (quick ? 16 : 256) * MiB;
  const payloadBytes = (quick ? 16 : 200) * MiB;
  const versions = 3;
  const work = await tmp('build');
  let reg;
  let proxy;
  try {
    const baseLayout = join(work.path, 'base');
    log(
      `writing base ${baseLayers} × ${baseLayerBytes / MiB} MiB and ${versions} payloads of ${payloadBytes / MiB} MiB`,
    );
    await addImage(baseLayout, { tag: 'base', layers: baseLayers, layerBytes: baseLayerBytes });
    // Payloads are consecutive slices of a tar of /usr: real, partly compressible data (binaries, libraries, text),
    // different for each version, like a provider layer's content.
    await runShell(
      `tar -cf - /usr 2>/dev/null | head -c ${versions * payloadBytes} | split -a 1 -d -b ${payloadBytes} - '${join(work.path, 'payload-')}'; true`,
    ); // tar dies of SIGPIPE by design
    const payloads = [];
    for (let v = 1; v <= versions; v++) {
      const f = join(work.path, `payload-${v - 1}`);
      if ((await stat(f)).size !== payloadBytes) throw new Error(`${f}: /usr is too small for the payloads`);
      payloads.push(f);
    }
    reg = await startRegistry();
    proxy = await startCountingProxy(reg.url);
    const env = { ...process.env, HOME: work.path };
    await runMeasured(
      'skopeo',
      ['copy', '--quiet', '--dest-tls-verify=false', `oci:${baseLayout}:base`, `docker://${proxy.host}/bench/base:1`],
      { env },
    );
    const baseRef = `${proxy.host}/bench/base:1`;

    const ours = await runOurs(mode, { baseRef, proxy, payloads, work: work.path, env, log });

    const theirs = { ms: 0, cpuS: 0, peakRssMB: 0, uploaded: [], versions: [] };
    // BENCH_BUILD_OURS_ONLY=1: ours alone (level sweeps, profiles); the rows then have no ratio.
    for (let v = 1; v <= (process.env.BENCH_BUILD_OURS_ONLY === '1' ? 0 : versions); v++) {
      log(`umoci insert + skopeo copy v${v}`);
      // Each version starts from its own copy of the base layout, like a CI job would (copy time not counted).
      const layout = join(work.path, `umoci-${v}`);
      await cp(baseLayout, layout, { recursive: true });
      proxy.reset();
      const ins = await runMeasured(
        'umoci',
        ['insert', '--image', `${layout}:base`, '--tag', `v${v}`, payloads[v - 1], '/opt/bench/payload.bin'],
        { env },
      );
      const push = await runMeasured(
        'skopeo',
        [
          'copy',
          '--quiet',
          '--dest-tls-verify=false',
          `oci:${layout}:v${v}`,
          `docker://${proxy.host}/bench/umoci:v${v}`,
        ],
        { env },
      );
      theirs.ms += ins.ms + push.ms;
      theirs.cpuS += (ins.cpuS ?? NaN) + (push.cpuS ?? NaN);
      theirs.peakRssMB = Math.max(theirs.peakRssMB, ins.peakRssMB, push.peakRssMB);
      const up = proxy.uploadedBytes();
      theirs.uploaded.push(up);
      theirs.versions.push({ insertMs: round(ins.ms, 0), pushMs: round(push.ms, 0), uploaded: up });
    }
    const oursBase = ours.versions.reduce((n, v) => n + v.baseBytesUploaded, 0);
    const sum = (a) => a.reduce((x, y) => x + y, 0);
    const totalPayload = versions * payloadBytes;
    return {
      params: {
        baseLayers,
        baseLayerBytes,
        payloadBytes,
        versions,
        ours: mode,
        level: process.env.BENCH_BUILD_LEVEL ?? 'default',
      },
      ours: {
        ms: round(ours.ms, 0),
        cpuS: round(ours.cpuS, 2),
        peakRssMB: round(ours.peakRssMB, 1),
        uploadedBytes: ours.uploaded,
        baseBytesUploaded: oursBase,
        versions: ours.versions,
      },
      umociSkopeo: {
        ms: round(theirs.ms, 0),
        cpuS: round(theirs.cpuS, 2),
        peakRssMB: round(theirs.peakRssMB, 1),
        uploadedBytes: theirs.uploaded,
        versions: theirs.versions,
      },
      rows: [
        row(
          'build',
          `wall time (${versions} × ${payloadBytes / MiB} MiB appends)`,
          ours.ms / 1000,
          theirs.ms / 1000,
          's',
          'lower',
        ),
        row(
          'build',
          'throughput (payload)',
          mbps(totalPayload, ours.ms),
          mbps(totalPayload, theirs.ms),
          'MB/s',
          'higher',
        ),
        row('build', 'peak RSS', ours.peakRssMB, theirs.peakRssMB, 'MiB', 'lower'),
        ...(Number.isNaN(ours.cpuS)
          ? []
          : [row('build', 'client CPU (user+sys)', ours.cpuS, theirs.cpuS, 's', 'lower')]),
        row('build', 'bytes uploaded', sum(ours.uploaded) / MiB, sum(theirs.uploaded) / MiB, 'MiB', 'lower'),
        row('build', 'base bytes uploaded (ours)', oursBase, null, 'B', 'lower', '= 0'),
      ],
    };
  } finally {
    await proxy?.stop();
    await reg?.stop();
    await work.cleanup();
  }
}

await runIfMain(import.meta.url, 'build', benchBuild);
