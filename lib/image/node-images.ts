import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { container, inNode, type ClusterEnv } from "../cluster/node.ts";
import { errnoText, U7sError } from "../errors.ts";
import { check, CommandError, formatCommand, lastLines, type Runner } from "../exec.ts";
import type { Log } from "../log.ts";
import { ensurePrivateDir } from "../state/files.ts";
import type { HostDataPaths } from "../state/paths.ts";
import { extractMember, type TarMember } from "./tar.ts";
import { FLANNEL_IMAGES } from "../versions.ts";
import { readRecord } from "./record.ts";

/**
 * Images in the node's containerd, where the kubelet finds them (namespace k8s.io), as `kind load`
 * puts them: `ctr images import` of an image archive handed over stdin. Nothing is pulled.
 */

/** CONTAINERD_NAMESPACE is the containerd namespace the kubelet's CRI uses. */
export const CONTAINERD_NAMESPACE = "k8s.io";

/**
 * normalizeRef writes an image reference as containerd lists it: registry domain (docker.io by
 * default, with library/ for official images) and a tag (latest by default) unless it has a digest.
 */
export function normalizeRef(ref: string): string {
  const slash = ref.indexOf("/");
  const first = slash === -1 ? "" : ref.slice(0, slash);
  const hasDomain = first !== "" && (first.includes(".") || first.includes(":") || first === "localhost");
  let out = hasDomain ? ref : `docker.io/${slash === -1 ? "library/" : ""}${ref}`;
  const lastPart = out.slice(out.lastIndexOf("/") + 1);
  if (!out.includes("@") && !lastPart.includes(":")) out += ":latest";
  return out;
}

/** nodeImages lists the image references in the node's containerd (k8s.io); a node without a working ctr is an error saying so. */
export async function nodeImages(env: ClusterEnv): Promise<Set<string>> {
  try {
    const r = await inNode(env, ["ctr", "--namespace", CONTAINERD_NAMESPACE, "images", "ls", "--quiet"]);
    return new Set(r.stdout.split("\n").map((l) => l.trim()).filter((l) => l !== ""));
  } catch (err) {
    throw new U7sError(`cannot list the images in the containerd of node ${env.config.nodeName} (ctr --namespace ${CONTAINERD_NAMESPACE} images ls)`, {
      detail: err instanceof U7sError ? [err.message, err.detail].filter(Boolean).join("\n") : String(err),
      hint: "the node image must carry containerd and ctr (the u7s node image does); check `u7s exec -- systemctl status containerd`",
    });
  }
}

/** snapshotterArgs picks the snapshotter the kubelet's CRI unpacks into (crictl info), as kind load does; none when it cannot tell. */
async function snapshotterArgs(env: ClusterEnv): Promise<string[]> {
  const r = await env.engine.exec(container(env), ["crictl", "info"]);
  if (r.exitCode !== 0) return [];
  try {
    const s = (JSON.parse(r.stdout) as { config?: { containerd?: { snapshotter?: unknown } } }).config?.containerd?.snapshotter;
    return typeof s === "string" && /^[a-z0-9-]+$/.test(s) ? [`--snapshotter=${s}`] : [];
  } catch {
    return [];
  }
}

/** importArchive imports one image archive (docker-archive or OCI) into the node's containerd through exec's stdin. */
export async function importArchive(env: ClusterEnv, archive: string, what: string): Promise<void> {
  const cmd = ["ctr", "--namespace", CONTAINERD_NAMESPACE, "images", "import", "--all-platforms", ...(await snapshotterArgs(env)), "-"];
  const r = await env.engine.exec(container(env), cmd, { inputFile: archive });
  if (r.exitCode !== 0) {
    throw new U7sError(`cannot import ${what} into the containerd of node ${env.config.nodeName}`, {
      detail: new CommandError(env.engine.execArgs(container(env), cmd, { interactive: true }), r).detail,
      hint: "check that containerd runs in the node (`u7s exec -- ctr version`) and that the archive is an image archive (`docker save` / `podman save` output)",
    });
  }
}

/** tempDir makes a private temporary directory under dir (created if needed). */
export async function tempDir(dir: string): Promise<string> {
  try {
    await ensurePrivateDir(dir);
    return await mkdtemp(join(dir, ".u7s-"));
  } catch (err) {
    throw new U7sError(`cannot create a temporary directory in ${dir}: ${errnoText(err)}`, { hint: "make it writable, or set XDG_DATA_HOME to a directory you can write to" });
  }
}

/** importMember imports one member of an archive: extracted to a private temporary file, then imported. */
export async function importMember(env: ClusterEnv, archive: string, m: TarMember, what: string, scratch: string): Promise<void> {
  const dir = await tempDir(scratch);
  try {
    const file = join(dir, "image.tar");
    await extractMember(archive, m, file);
    await importArchive(env, file, what);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * importLoadedImages puts the cluster images this host loaded (`u7s image load`) into a new or
 * started node's containerd, those it does not have yet, before anything in the node would pull them.
 * Nothing loaded: nothing asked of the node.
 */
export async function importLoadedImages(env: ClusterEnv, paths: HostDataPaths, log: Log): Promise<void> {
  const record = await readRecord(paths);
  if (record.images.length === 0) return;
  const have = await nodeImages(env);
  for (const img of record.images) {
    if (have.has(normalizeRef(img.ref))) continue;
    await log.step(`Importing ${img.ref} into the node's containerd (${CONTAINERD_NAMESPACE})`, () => importArchive(env, join(paths.imagesDir, img.file), img.ref));
  }
}

/** withSavedImage saves an engine image to a private temporary file under scratch and runs fn with its path. */
export async function withSavedImage<T>(env: { engine: ClusterEnv["engine"]; runner: Runner }, ref: string, scratch: string, fn: (file: string) => Promise<T>): Promise<T> {
  const dir = await tempDir(scratch);
  try {
    const file = join(dir, "image.tar");
    try {
      await check(env.runner, env.engine.saveArgs(ref, file));
    } catch (err) {
      throw new U7sError(`cannot save ${ref} from ${env.engine.name}`, { detail: err instanceof U7sError ? err.detail : String(err), hint: `check \`${formatCommand([env.engine.binary, "image", "inspect", ref])}\`` });
    }
    return await fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * ensureFlannelImages makes sure Flannel's images are in the node before Flannel is installed: when
 * one is missing it is pulled through the CRI (crictl, so containerd's registry mirrors apply), and
 * when no registry answers the error says which image and how to bring it. A node image without
 * crictl is left to the kubelet.
 */
export async function ensureFlannelImages(env: ClusterEnv, images: readonly string[] = FLANNEL_IMAGES): Promise<void> {
  const node = container(env);
  if ((await env.engine.exec(node, ["crictl", "--version"])).exitCode !== 0) return;
  for (const ref of images) {
    if ((await env.engine.exec(node, ["crictl", "inspecti", "--quiet", ref])).exitCode === 0) continue;
    env.log.info(`   pulling ${ref} into the node`);
    const r = await env.engine.exec(node, ["crictl", "pull", ref]);
    if (r.exitCode !== 0) {
      throw new U7sError(`Flannel's image ${ref} is not in node ${env.config.nodeName} and cannot be pulled`, {
        detail: lastLines(r.stderr || r.stdout, 3) || undefined,
        hint: "on a host with registry access, `u7s image save -o FILE` (the bundle holds Flannel's images); here, `u7s image load -i FILE` and `u7s load-image --archive FILE` (a new node gets them from `u7s up`)",
      });
    }
  }
}
