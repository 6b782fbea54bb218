import { U7sError } from "../errors.ts";
import { readFileIfExists, writeFileAtomic } from "../state/files.ts";
import type { HostDataPaths } from "../state/paths.ts";

/** RECORD_KIND marks the record of images `u7s image load` keeps for this host. */
export const RECORD_KIND = "u7s-loaded-images";

/** LoadedImage is one cluster image a bundle brought to this host, kept as an archive under imagesDir. */
export interface LoadedImage {
  ref: string;
  /** file: the archive's name in imagesDir (its sha256 and .tar). */
  file: string;
  sha256: string;
  size: number;
  /** loaded: when it was loaded (ISO 8601). */
  loaded: string;
}

/** LoadedRecord is what this host has loaded: cluster images for new nodes, and the node images bundles carried. */
export interface LoadedRecord {
  kind: typeof RECORD_KIND;
  version: 1;
  images: LoadedImage[];
  /** nodeImages: the node images loaded into the engine (newest last), named in hints. */
  nodeImages: { ref: string; loaded: string }[];
}

/** emptyRecord is the record of a host that loaded nothing. */
export function emptyRecord(): LoadedRecord {
  return { kind: RECORD_KIND, version: 1, images: [], nodeImages: [] };
}

/** readRecord reads this host's record of loaded images; none yet is an empty record, a damaged one an error. */
export async function readRecord(paths: HostDataPaths): Promise<LoadedRecord> {
  const text = await readFileIfExists(paths.imagesRecord);
  if (text === undefined) return emptyRecord();
  const bad = () =>
    new U7sError(`${paths.imagesRecord} is not a record of loaded images`, {
      hint: `remove it (\`rm ${paths.imagesRecord}\`) and load the bundle again (\`u7s image load -i FILE\`)`,
    });
  let raw: Partial<LoadedRecord>;
  try {
    raw = JSON.parse(text) as Partial<LoadedRecord>;
  } catch {
    throw bad();
  }
  if (raw.kind !== RECORD_KIND || raw.version !== 1 || !Array.isArray(raw.images)) throw bad();
  const images = raw.images.filter(
    (i): i is LoadedImage => typeof i?.ref === "string" && typeof i.file === "string" && /^[0-9a-f]{64}\.tar$/.test(i.file) && typeof i.sha256 === "string" && typeof i.size === "number",
  );
  if (images.length !== raw.images.length) throw bad();
  const nodeImages = Array.isArray(raw.nodeImages) ? raw.nodeImages.filter((n) => typeof n?.ref === "string") : [];
  return { kind: RECORD_KIND, version: 1, images, nodeImages };
}

/** writeRecord writes the record atomically (0600). */
export async function writeRecord(paths: HostDataPaths, record: LoadedRecord): Promise<void> {
  await writeFileAtomic(paths.imagesRecord, `${JSON.stringify(record, null, 2)}\n`);
}

/** withImage is the record with an image added (an earlier entry of the same ref replaced). */
export function withImage(record: LoadedRecord, image: LoadedImage): LoadedRecord {
  return { ...record, images: [...record.images.filter((i) => i.ref !== image.ref), image] };
}
