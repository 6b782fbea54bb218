import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeImageRef, writeBuildContext } from "../assets.ts";
import { U7sError, wrapError } from "../errors.ts";
import { CommandError } from "../exec.ts";
import { KIND_NODE_IMAGE } from "../versions.ts";
import type { UpEnv, UpOptions } from "./lifecycle.ts";

/** ensureImage makes sure the node image exists: --image must be local; otherwise build it from the embedded assets. */
export async function ensureImage(env: UpEnv, opts: UpOptions): Promise<string> {
  const { engine, applier, log } = env;
  if (opts.image !== undefined) {
    if (!(await engine.imageExists(opts.image))) {
      throw new U7sError(`image ${opts.image} is not present in ${engine.name}`, {
        hint: `load it first (\`${engine.binary} load -i FILE\`), or leave out --image to build the node image`,
      });
    }
    return opts.image;
  }
  const ref = nodeImageRef();
  if (await engine.imageExists(ref)) return ref;
  const baseLocal = await engine.imageExists(KIND_NODE_IMAGE);
  if (applier.dryRun) {
    await applier.apply("Building the node image", engine.buildArgs(ref, "<build context>"));
    return ref;
  }
  const dir = await mkdtemp(join(tmpdir(), "u7s-build-"));
  try {
    await writeBuildContext(dir);
    if (!baseLocal) log.info(`the base image ${KIND_NODE_IMAGE} is not present locally; the build will try to pull it`);
    await applier.apply(`Building the node image ${ref}`, engine.buildArgs(ref, dir));
  } catch (err) {
    if (err instanceof CommandError && !baseLocal) {
      throw new U7sError(`cannot build the node image: the base image ${KIND_NODE_IMAGE} is not present and could not be pulled`, {
        detail: err.detail,
        hint: "on a host without registry access, load a saved node image (`u7s image load FILE`, made with `u7s image save` on a connected host) or run an existing local image with `u7s up --image REF`",
      });
    }
    throw wrapError("cannot build the node image", err);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return ref;
}
