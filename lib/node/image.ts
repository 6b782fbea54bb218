import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeImageRef, writeBuildContext } from "../assets.ts";
import { errnoText, U7sError, wrapError } from "../errors.ts";
import { CommandError, formatCommand } from "../exec.ts";
import { KIND_NODE_IMAGE } from "../versions.ts";
import { readRecord } from "../image/record.ts";
import { hostDataPaths } from "../state/paths.ts";
import type { UpEnv, UpOptions } from "./lifecycle.ts";

// The reference grammar of github.com/distribution/reference (what docker, podman and nerdctl
// accept): [DOMAIN[:PORT]/]PATH[/PATH...][:TAG][@ALGO:HEX], paths lowercase.
const DOMAIN_PART = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = `${DOMAIN_PART}(?:\\.${DOMAIN_PART})*(?::[0-9]+)?`;
const PATH = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const TAG = "[\\w][\\w.-]{0,127}";
const DIGEST = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
// An image ID, sha256:HEX, reads as NAME:TAG in this grammar, so it needs no rule of its own.
const IMAGE_REF = new RegExp(`^(?:${DOMAIN}/)?${PATH}(?:/${PATH})*(?::${TAG})?(?:@${DIGEST})?$`);

/** isImageRef tells whether s is an image reference the engines accept (or a sha256: image ID). */
export function isImageRef(s: string): boolean {
  const name = s.replace(/@.*$/, "").replace(/:[^/:]*$/, "");
  return name.length <= 255 && IMAGE_REF.test(s);
}

/**
 * ensureImage makes sure the node image exists: --image must be local; otherwise build it from the
 * embedded assets. present: the engine's answer whether that image exists, when already asked.
 */
export async function ensureImage(env: UpEnv, opts: UpOptions, present?: Promise<boolean>): Promise<string> {
  const { engine, applier, log } = env;
  if (opts.image !== undefined) {
    if (!(await (present ?? engine.imageExists(opts.image)))) {
      throw new U7sError(`image ${opts.image} is not present in ${engine.name}`, {
        hint: `load it first (\`${formatCommand(engine.loadArgs("FILE"))}\`), or leave out --image to build the node image`,
      });
    }
    return opts.image;
  }
  const ref = nodeImageRef();
  if (await (present ?? engine.imageExists(ref))) return ref;
  const baseLocal = await engine.imageExists(KIND_NODE_IMAGE);
  if (applier.dryRun) {
    await applier.apply("Building the node image", engine.buildArgs(ref, "<build context>"));
    return ref;
  }
  const dir = await buildDir(env.env.TMPDIR);
  try {
    await writeBuildContext(dir);
    if (!baseLocal) log.info(`the base image ${KIND_NODE_IMAGE} is not present locally; the build will try to pull it`);
    await applier.apply(`Building the node image ${ref}`, engine.buildArgs(ref, dir));
  } catch (err) {
    if (err instanceof CommandError && !baseLocal) {
      throw new U7sError(`cannot build the node image: the base image ${KIND_NODE_IMAGE} is not present and could not be pulled`, {
        detail: err.detail,
        hint: (await loadedNodeImageHint(env)) ?? `on a host without registry access, bring the node image in one bundle: \`u7s image save -o FILE\` on a connected host, \`u7s image load -i FILE\` here; or load an image of your own (\`${formatCommand(engine.loadArgs("FILE"))}\`) and run it with \`u7s up --image REF\``,
      });
    }
    throw wrapError("cannot build the node image", err);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return ref;
}

/** loadedNodeImageHint names the node image a bundle loaded on this host brought, when the engine has it (a bundle of another u7s version). */
async function loadedNodeImageHint(env: UpEnv): Promise<string | undefined> {
  let record;
  try {
    record = await readRecord(hostDataPaths(env.env, env.host.hostname()));
  } catch {
    return undefined; // no HOME, or a damaged record: the general hint
  }
  for (const n of [...record.nodeImages].reverse()) {
    if (await env.engine.imageExists(n.ref).catch(() => false)) return `this host loaded the node image ${n.ref} (\`u7s image load\`): run it with \`u7s up --image ${n.ref}\``;
  }
  return undefined;
}

/** buildDir makes the temporary build context directory under TMPDIR (default /tmp), or says plainly why it cannot. */
async function buildDir(tmpdirSetting: string | undefined): Promise<string> {
  const base = tmpdirSetting ? tmpdirSetting.replace(/(.)\/+$/, "$1") : tmpdir();
  try {
    return await mkdtemp(join(base, "u7s-build-"));
  } catch (err) {
    throw new U7sError(`cannot create a build directory in ${base}: ${errnoText(err)}`, {
      hint: "set TMPDIR to an existing directory you can write to (or unset it to use /tmp)",
    });
  }
}
