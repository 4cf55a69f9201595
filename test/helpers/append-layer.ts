/**
 * Append one built layer to the image of an OCI layout in place (first index entry): the blob is expected in the
 * layout's blobs/ already; config (diff_ids), manifest and index.json are rewritten. For fixtures that need one more
 * layer on top of an existing image.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuiltLayer } from '../../src/layers/build.js';

/** Add `layer` (already written to `<layout>/blobs/sha256/`) on top of the layout's first image. */
export async function appendLayerToLayout(
  layout: string,
  layer: Pick<BuiltLayer, 'digest' | 'size' | 'diffId' | 'mediaType'>,
): Promise<void> {
  const blob = (d: string): string => join(layout, 'blobs', 'sha256', d.replace(/^sha256:/, ''));
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
    manifests: { digest: string; size: number }[];
  };
  const desc = index.manifests[0]!;
  const manifest = JSON.parse(await readFile(blob(desc.digest), 'utf8')) as {
    config: { digest: string; size: number };
    layers: unknown[];
  };
  const config = JSON.parse(await readFile(blob(manifest.config.digest), 'utf8')) as { rootfs: { diff_ids: string[] } };
  config.rootfs.diff_ids.push(layer.diffId);
  const put = async (data: Buffer): Promise<{ digest: string; size: number }> => {
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    await writeFile(blob(digest), data);
    return { digest, size: data.length };
  };
  manifest.config = { ...manifest.config, ...(await put(Buffer.from(JSON.stringify(config)))) };
  manifest.layers.push({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size });
  Object.assign(desc, await put(Buffer.from(JSON.stringify(manifest))));
  await writeFile(join(layout, 'index.json'), JSON.stringify(index));
}
