import { readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Engine } from "../engine/engine.ts";
import { U7sError, wrapError } from "../errors.ts";
import { check, formatCommand, type Runner } from "../exec.ts";
import type { Log } from "../log.ts";
import { ensurePrivateDir } from "../state/files.ts";
import type { HostDataPaths } from "../state/paths.ts";
import { verifyBundle, type BundleImage, type VerifiedBundle } from "./bundle.ts";
import { tempDir } from "./node-images.ts";
import { readRecord, withImage, writeRecord } from "./record.ts";
import { extractMember } from "./tar.ts";

/** HostImagesEnv is what loading a bundle on this host works with. */
export interface HostImagesEnv {
  engine: Engine;
  runner: Runner;
  log: Log;
  paths: HostDataPaths;
}

/** LoadReport says what `u7s image load` brought. */
export interface LoadReport {
  nodeImages: string[];
  clusterImages: string[];
}

/**
 * loadBundle loads a bundle on this host: verified whole first (a truncated or corrupt archive
 * changes nothing), then the node image into the engine, then each cluster image kept as an archive
 * under XDG_DATA_HOME/u7s/HOST/images and recorded, for `u7s up` to import into new nodes.
 */
export async function loadBundle(env: HostImagesEnv, path: string): Promise<LoadReport> {
  const bundle = await env.log.step(`Checking ${path} (every image against its checksum)`, () => verifyBundle(path));
  const report: LoadReport = { nodeImages: [], clusterImages: [] };
  const scratch = await tempDir(env.paths.imagesDir);
  try {
    for (const img of bundle.manifest.images.filter((i) => i.role === "node")) {
      const file = join(scratch, "node.tar");
      await extractMember(path, bundle.members.get(img.file)!, file);
      await env.log.step(`Loading the node image ${img.ref} into ${env.engine.name}`, () =>
        check(env.runner, env.engine.loadArgs(file)).catch((err) => {
          throw wrapError(`cannot load ${img.ref} into ${env.engine.name}`, err);
        }),
      );
      await rm(file, { force: true });
      report.nodeImages.push(img.ref);
    }
    let record = await readRecord(env.paths);
    for (const img of bundle.manifest.images.filter((i) => i.role === "cluster")) {
      await env.log.step(`Keeping ${img.ref} for new nodes`, () => keepImage(env.paths, bundle, img, scratch));
      record = withImage(record, { ref: img.ref, file: `${img.sha256}.tar`, sha256: img.sha256, size: img.size, loaded: new Date().toISOString() });
      report.clusterImages.push(img.ref);
    }
    const loaded = new Date().toISOString();
    record = { ...record, nodeImages: [...record.nodeImages.filter((n) => !report.nodeImages.includes(n.ref)), ...report.nodeImages.map((ref) => ({ ref, loaded }))] };
    await writeRecord(env.paths, record);
    await pruneUnrecorded(env.paths, record.images.map((i) => i.file));
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return report;
}

/** keepImage stores one cluster image's archive as imagesDir/SHA256.tar (atomically: extracted aside, then renamed). */
async function keepImage(paths: HostDataPaths, bundle: VerifiedBundle, img: BundleImage, scratch: string): Promise<void> {
  await ensurePrivateDir(paths.imagesDir);
  const dest = join(paths.imagesDir, `${img.sha256}.tar`);
  const have = await stat(dest).catch(() => undefined);
  if (have?.size === img.size) return; // the same bytes (its name is their checksum)
  const tmp = join(scratch, `${img.sha256}.tar`);
  await extractMember(bundle.path, bundle.members.get(img.file)!, tmp);
  await rename(tmp, dest);
}

/** pruneUnrecorded removes archives in imagesDir that the record no longer names (a ref loaded again with other bytes). */
async function pruneUnrecorded(paths: HostDataPaths, keep: readonly string[]): Promise<void> {
  for (const f of await readdir(paths.imagesDir).catch(() => [] as string[])) {
    if (/^[0-9a-f]{64}\.tar$/.test(f) && !keep.includes(f)) await rm(join(paths.imagesDir, f), { force: true });
  }
}

/** ensureLocalImage makes sure the engine has an image for a bundle: present, or pulled; a failed pull says which image and how to bring it. */
export async function ensureLocalImage(env: { engine: Engine; runner: Runner; log: Log }, ref: string): Promise<void> {
  if (await env.engine.imageExists(ref)) return;
  try {
    await env.log.step(`Pulling ${ref}`, () => check(env.runner, env.engine.pullArgs(ref)));
  } catch (err) {
    throw new U7sError(`${ref} is not present in ${env.engine.name} and could not be pulled`, {
      detail: err instanceof U7sError ? err.detail : String(err),
      hint: `run \`u7s image save\` on a host with registry access; or bring the image here yourself (\`${formatCommand(env.engine.saveArgs(ref, "FILE"))}\` there, \`${formatCommand(env.engine.loadArgs("FILE"))}\` here)`,
    });
  }
}
