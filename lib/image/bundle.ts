import { randomBytes } from "node:crypto";
import { mkdtemp, rename, rm } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { Engine } from "../engine/engine.ts";
import { errnoText, U7sError, wrapError } from "../errors.ts";
import { check, type Runner } from "../exec.ts";
import type { Log } from "../log.ts";
import { isImageRef } from "../node/image.ts";
import { KUBERNETES_VERSION, VERSION } from "../versions.ts";
import { formatBytes } from "../state/user-file.ts";
import { readTar, TarError, TarWriter, type TarMember } from "./tar.ts";

/**
 * An image bundle is one tar file that brings a host without registry access everything a node
 * needs: the node image and the images the cluster pulls that the node image lacks (Flannel's), each
 * as the engine saved it, plus SHA256SUMS and a manifest (u7s-bundle.json, last: an archive cut
 * short lacks it). `u7s image load` checks every byte against the manifest before changing anything.
 *
 *   images/0-node.tar   the node image (engine save)
 *   images/1.tar ...    cluster images (engine save)
 *   SHA256SUMS          sha256sum -c compatible, after `tar -xf`
 *   u7s-bundle.json     BundleManifest
 */

/** BUNDLE_KIND marks a u7s image bundle's manifest. */
export const BUNDLE_KIND = "u7s-image-bundle";
/** MANIFEST_NAME is the manifest's name in the archive. */
export const MANIFEST_NAME = "u7s-bundle.json";
/** SUMS_NAME is the checksum list's name in the archive. */
export const SUMS_NAME = "SHA256SUMS";

/** BundleImage is one image in a bundle. */
export interface BundleImage {
  ref: string;
  /** role: the node image, or an image the cluster needs in the node's containerd. */
  role: "node" | "cluster";
  /** file: its member name, images/N.tar. */
  file: string;
  size: number;
  sha256: string;
}

/** BundleManifest describes a bundle. */
export interface BundleManifest {
  kind: typeof BUNDLE_KIND;
  version: 1;
  created: string;
  u7sVersion: string;
  kubernetesVersion: string;
  images: BundleImage[];
}

/** BundleEnv is what saving a bundle works with. */
export interface BundleEnv {
  engine: Engine;
  runner: Runner;
  log: Log;
}

/** bundleHint says how to get a good bundle. */
export const BUNDLE_HINT = "make it again on a host with registry access (`u7s image save -o FILE`) and copy it whole (compare `sha256sum FILE` on both hosts)";

/**
 * saveBundle writes a bundle of these images to output: each image is saved by the engine to a
 * temporary file next to output and copied in (one at a time, so the disk needs the bundle plus
 * one image), then the checksums and manifest; the file appears under its name only when complete.
 */
export async function saveBundle(env: BundleEnv, output: string, images: readonly { ref: string; role: BundleImage["role"] }[]): Promise<BundleManifest> {
  const target = resolve(output);
  const dir = dirname(target);
  const tmp = join(dir, `.${basename(target)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  let work: string;
  try {
    work = await mkdtemp(join(dir, ".u7s-save-"));
  } catch (err) {
    throw new U7sError(`cannot write the bundle in ${dir}: ${errnoText(err)}`, { hint: "choose a -o path in a directory you can write to" });
  }
  let writer: TarWriter | undefined;
  try {
    writer = await TarWriter.create(tmp);
    const entries: BundleImage[] = [];
    for (const [i, img] of images.entries()) {
      const file = img.role === "node" ? `images/${i}-node.tar` : `images/${i}.tar`;
      const saved = join(work, `${i}.tar`);
      await env.log.step(`Saving ${img.ref}`, () => check(env.runner, env.engine.saveArgs(img.ref, saved)).catch((err) => {
        throw wrapError(`cannot save ${img.ref} from ${env.engine.name}`, err);
      }));
      const { size, sha256 } = await writer.addFile(file, saved);
      await rm(saved, { force: true });
      entries.push({ ref: img.ref, role: img.role, file, size, sha256 });
    }
    const manifest: BundleManifest = {
      kind: BUNDLE_KIND,
      version: 1,
      created: new Date().toISOString(),
      u7sVersion: VERSION,
      kubernetesVersion: KUBERNETES_VERSION,
      images: entries,
    };
    await writer.addBytes(SUMS_NAME, entries.map((e) => `${e.sha256}  ${e.file}\n`).join(""));
    await writer.addBytes(MANIFEST_NAME, `${JSON.stringify(manifest, null, 2)}\n`);
    await writer.finish();
    writer = undefined;
    await rename(tmp, target);
    return manifest;
  } finally {
    await writer?.abort();
    await rm(tmp, { force: true });
    await rm(work, { recursive: true, force: true });
  }
}

/** VerifiedBundle is a bundle whose every image matched its manifest: where each one's bytes are. */
export interface VerifiedBundle {
  path: string;
  manifest: BundleManifest;
  /** members maps each image's file to its place in the archive. */
  members: Map<string, TarMember>;
}

/** hasManifest tells whether an archive's members include a bundle manifest. */
export function hasManifest(members: readonly TarMember[]): boolean {
  return members.some((m) => m.name === MANIFEST_NAME);
}

/**
 * MANIFEST_MAX_BYTES caps the manifest and SHA256SUMS u7s reads into memory: `u7s image save` writes
 * about 200 bytes per image, so a bundle of thousands of images stays far below it.
 */
export const MANIFEST_MAX_BYTES = 1 << 20;

/**
 * readArchive reads a tar archive once (every member hashed, only the manifest and SHA256SUMS kept
 * as text); a truncated or corrupt one is a U7sError naming the file, a FIFO, device or directory a
 * UsageError (exit 2) before anything is read.
 */
export async function readArchive(path: string): Promise<Awaited<ReturnType<typeof readTar>>> {
  try {
    return await readTar(path, { smallLimit: MANIFEST_MAX_BYTES, keep: new Set([MANIFEST_NAME, SUMS_NAME]), what: "archive" });
  } catch (err) {
    if (err instanceof U7sError) throw err;
    if (err instanceof TarError) throw new U7sError(`${path} is not a complete archive (${err.message}); nothing was loaded`, { hint: BUNDLE_HINT });
    throw new U7sError(`cannot read ${path}: ${errnoText(err)}`, { hint: "check the path (-i FILE)" });
  }
}

/**
 * verifyBundle reads a bundle once and checks it against its manifest: every image present with
 * its size and sha256 (and SHA256SUMS agreeing). It changes nothing; any mismatch, a truncated
 * archive or a missing manifest is a U7sError naming what is wrong.
 */
export async function verifyBundle(path: string, read?: Awaited<ReturnType<typeof readArchive>>): Promise<VerifiedBundle> {
  const { members, small } = read ?? (await readArchive(path));
  const bad = (what: string) => new U7sError(`${path}: ${what}; nothing was loaded`, { hint: BUNDLE_HINT });
  for (const m of members.filter((m) => (m.name === MANIFEST_NAME || m.name === SUMS_NAME) && m.size > MANIFEST_MAX_BYTES)) {
    throw bad(`${m.name} is ${m.size} bytes; u7s reads at most ${formatBytes(MANIFEST_MAX_BYTES)} of it`);
  }
  const text = small.get(MANIFEST_NAME);
  if (text === undefined) throw bad(`no ${MANIFEST_NAME}: not a u7s image bundle (or cut short before its end)`);
  const manifest = parseManifest(text, bad);
  const byName = new Map(members.map((m) => [m.name, m]));
  const sums = parseSums(small.get(SUMS_NAME) ?? "");
  for (const img of manifest.images) {
    const m = byName.get(img.file);
    if (!m) throw bad(`${img.ref} (${img.file}) is missing from the archive`);
    if (m.size !== img.size) throw bad(`${img.ref} (${img.file}) has ${m.size} bytes, the manifest says ${img.size}`);
    if (m.sha256 !== img.sha256) throw bad(`${img.ref} (${img.file}) fails its checksum (sha256 ${m.sha256}, the manifest says ${img.sha256})`);
    if (sums.get(img.file) !== img.sha256) throw bad(`${SUMS_NAME} does not list ${img.file} with the manifest's checksum`);
  }
  return { path, manifest, members: byName };
}

function parseSums(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (m) out.set(m[2]!, m[1]!);
  }
  return out;
}

const MEMBER = /^images\/[0-9]+(-node)?\.tar$/;

/** parseManifest validates a bundle manifest; bad makes the error. */
function parseManifest(text: string, bad: (what: string) => U7sError): BundleManifest {
  let raw: Partial<BundleManifest>;
  try {
    raw = JSON.parse(text) as Partial<BundleManifest>;
  } catch {
    throw bad(`${MANIFEST_NAME} is not JSON`);
  }
  if (raw.kind !== BUNDLE_KIND) throw bad(`${MANIFEST_NAME} has kind ${JSON.stringify(raw.kind)}, not ${BUNDLE_KIND}`);
  if (raw.version !== 1) throw bad(`${MANIFEST_NAME} has version ${JSON.stringify(raw.version)}; this u7s reads version 1`);
  if (!Array.isArray(raw.images) || raw.images.length === 0) throw bad(`${MANIFEST_NAME} lists no images`);
  const images: BundleImage[] = raw.images.map((i, n) => {
    const ok =
      typeof i?.ref === "string" && isImageRef(i.ref) && (i.role === "node" || i.role === "cluster") && typeof i.file === "string" && MEMBER.test(i.file) &&
      Number.isSafeInteger(i.size) && typeof i.sha256 === "string" && /^[0-9a-f]{64}$/.test(i.sha256);
    if (!ok) throw bad(`${MANIFEST_NAME}: image ${n + 1} is not valid`);
    return { ref: i.ref, role: i.role, file: i.file, size: i.size, sha256: i.sha256 };
  });
  if (new Set(images.map((i) => i.file)).size !== images.length) throw bad(`${MANIFEST_NAME} names one file twice`);
  return {
    kind: BUNDLE_KIND,
    version: 1,
    created: String(raw.created ?? ""),
    u7sVersion: String(raw.u7sVersion ?? ""),
    kubernetesVersion: String(raw.kubernetesVersion ?? ""),
    images,
  };
}
