// Pushes an artifact in Fleet's exact format (fleet-reference §2) to `<prefix>/<contentsId>:latest`:
// an OCI image manifest with artifactType application/fleet.manifest, oras' empty config, one
// application/fleet.file layer annotated with id = contentsId, and the created annotation.
// The helper writes an OCI layout to disk and lets skopeo copy it, then reads the manifest back
// over plain HTTP (independent of src/) to prove the bytes arrived unchanged.
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestRegistry } from './registry.ts';
import { rawGet } from './raw-http.ts';

const exec = promisify(execFile);

export const FLEET_ARTIFACT_TYPE = 'application/fleet.manifest';
export const FLEET_LAYER_TYPE = 'application/fleet.file';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
// oras-go v2 PackManifestVersion1_1 with an artifactType: the empty config descriptor.
const EMPTY_CONFIG = { mediaType: 'application/vnd.oci.empty.v1+json', data: Buffer.from('{}') };

export interface PushOptions {
  /** Defaults to the id Fleet would compute for `content`. */
  contentsId?: string;
  /** Manifest annotation org.opencontainers.image.created; null leaves it out. Default: now. */
  created?: Date | null;
  /** The bundle manifest bytes (Fleet stores its JSON); default: a small unique fake. */
  content?: string | Buffer;
}

/** Where to push: the registry and the repository prefix (the secret's reference path). */
export interface PushTarget {
  registry: TestRegistry;
  prefix: string;
}

/** Fleet's contents id: `s-` + sha256 hex of the bundle manifest, cut to 63 characters. */
export function contentsIdFor(content: string | Buffer): string {
  return `s-${createHash('sha256').update(content).digest('hex')}`.slice(0, 63);
}

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The manifest bytes as oras marshals them (Go struct field order). */
export function fleetManifest(contentsId: string, layer: Buffer, created: Date | null): Buffer {
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: FLEET_ARTIFACT_TYPE,
    config: { mediaType: EMPTY_CONFIG.mediaType, digest: sha(EMPTY_CONFIG.data), size: EMPTY_CONFIG.data.length, data: EMPTY_CONFIG.data.toString('base64') },
    layers: [{ mediaType: FLEET_LAYER_TYPE, digest: sha(layer), size: layer.length, annotations: { id: contentsId } }],
  };
  if (created) manifest.annotations = { 'org.opencontainers.image.created': created.toISOString().replace(/\.\d{3}Z$/, 'Z') };
  return Buffer.from(JSON.stringify(manifest));
}

export async function pushFleetArtifact(target: PushTarget, opts: PushOptions = {}): Promise<{ contentsId: string; digest: string; manifest: Buffer }> {
  const { registry, prefix } = target;
  const content = opts.content ?? JSON.stringify({ resources: [{ name: `cm-${randomUUID()}.yaml`, content: 'kind: ConfigMap' }] });
  const layer = Buffer.from(content);
  const contentsId = opts.contentsId ?? contentsIdFor(layer);
  const created = opts.created === undefined ? new Date() : opts.created;
  const manifest = fleetManifest(contentsId, layer, created);
  const digest = sha(manifest);

  const dir = await mkdtemp(join(tmpdir(), 'fleet-cleanup-oci-'));
  try {
    const blobs = join(dir, 'blobs', 'sha256');
    await mkdir(blobs, { recursive: true });
    for (const blob of [EMPTY_CONFIG.data, layer, manifest]) await writeFile(join(blobs, sha(blob).slice(7)), blob);
    await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await writeFile(join(dir, 'index.json'), JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: OCI_MANIFEST, digest, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
    }));
    const repo = prefix ? `${prefix}/${contentsId}` : contentsId;
    const args = ['copy', '--quiet', '--preserve-digests', `oci:${dir}:latest`, `docker://${registry.host}/${repo}:latest`];
    if (registry.certDir) args.push('--dest-cert-dir', registry.certDir);
    else args.push('--dest-tls-verify=false');
    if (registry.username) args.push('--dest-creds', `${registry.username}:${registry.password}`);
    try {
      await exec('skopeo', args, { env: { ...process.env, HOME: dir }, timeout: 30_000 });
    } catch (err) {
      const e = err as { stderr?: string };
      // The command line holds the password: report skopeo's own words only.
      throw new Error(`skopeo copy to ${registry.host}/${repo} failed: ${(e.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
    }
    const stored = await rawGet(registry, `/v2/${repo}/manifests/${digest}`, OCI_MANIFEST);
    if (stored.status !== 200 || !stored.body.equals(manifest)) {
      throw new Error(`skopeo did not keep the Fleet manifest byte for byte (status ${stored.status}): ${stored.body.toString('utf8').slice(0, 300)}`);
    }
    return { contentsId, digest, manifest };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
