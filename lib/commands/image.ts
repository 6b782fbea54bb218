import { nodeImageRef } from "../assets.ts";
import { hostDataPaths } from "../state/paths.ts";
import { UsageError } from "../errors.ts";
import { saveBundle } from "../image/bundle.ts";
import { ensureLocalImage, loadBundle } from "../image/host-images.ts";
import { ensureImage, isImageRef } from "../node/image.ts";
import { FLANNEL_IMAGES } from "../versions.ts";
import { applierFor, nodeContext } from "./_node.ts";
import { stringFlag } from "./_shared.ts";
import type { Args, CommandDef, Ctx } from "./_types.ts";

const SUBCOMMANDS = ["build", "save", "load"] as const;

/** listFlag reads a repeatable string flag. */
function listFlag(args: Args, name: string): string[] {
  const v = args.values[name];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : typeof v === "string" ? [v] : [];
}

/** build makes the node image from the embedded assets (its tag carries their hash, so one present is the same image). */
async function build(ctx: Ctx, args: Args): Promise<void> {
  const { config, engine } = await nodeContext(ctx);
  const ref = nodeImageRef();
  const had = await engine.imageExists(ref);
  const applier = applierFor(ctx, args);
  await ensureImage({ config, engine, host: ctx.host, log: ctx.log, applier, runner: ctx.runner, env: ctx.env }, { recreate: false, timeoutSeconds: 0 });
  if (applier.dryRun) return;
  if (had) ctx.log.info(`the node image ${ref} is already present (its tag carries the hash of the assets it is built from)`);
  ctx.out.write(`${ref}\n`);
}

/** save writes one bundle: the node image and the images the cluster needs that it lacks. */
async function save(ctx: Ctx, args: Args): Promise<void> {
  const output = stringFlag(args, "output");
  if (output === undefined || output === "") throw new UsageError("u7s image save: -o FILE is required (the bundle to write)", { hint: "e.g. `u7s image save -o u7s-images.tar`" });
  const nodeRef = stringFlag(args, "image");
  const includes = listFlag(args, "include");
  for (const ref of [...(nodeRef !== undefined ? [nodeRef] : []), ...includes]) {
    if (!isImageRef(ref)) throw new UsageError(`${JSON.stringify(ref)}: not an image reference (valid: [REGISTRY/]NAME[:TAG][@DIGEST], e.g. ghcr.io/org/app:v1)`);
  }
  const { config, engine } = await nodeContext(ctx);
  const env = { engine, runner: ctx.runner, log: ctx.log };
  let node = nodeRef;
  if (node === undefined) {
    node = await ensureImage({ ...env, config, host: ctx.host, applier: applierFor(ctx, args), env: ctx.env }, { recreate: false, timeoutSeconds: 0 });
  } else if (!(await engine.imageExists(node))) {
    throw new UsageError(`--image ${node}: not present in ${engine.name}`, { hint: "give a node image this engine has (see `u7s image build`), or leave out --image to save the one u7s builds" });
  }
  const cluster = [...new Set([...FLANNEL_IMAGES, ...includes])].filter((r) => r !== node);
  for (const ref of cluster) await ensureLocalImage(env, ref);
  const manifest = await saveBundle(env, output, [{ ref: node, role: "node" }, ...cluster.map((ref) => ({ ref, role: "cluster" as const }))]);
  const mb = Math.round(manifest.images.reduce((n, i) => n + i.size, 0) / 1e6);
  ctx.log.info(`wrote ${output}: ${manifest.images.length} images, ${mb} MB; on a host without registry access: u7s image load -i ${output}`);
  ctx.out.write(`${output}\n`);
}

/** load loads a bundle here: checked whole first, then the node image into the engine and the cluster images kept for new nodes. */
async function load(ctx: Ctx, args: Args): Promise<void> {
  const input = stringFlag(args, "input");
  if (input === undefined || input === "") throw new UsageError("u7s image load: -i FILE is required (a bundle from `u7s image save`)");
  const { engine } = await nodeContext(ctx);
  const paths = hostDataPaths(ctx.env, ctx.host.hostname());
  const report = await loadBundle({ engine, runner: ctx.runner, log: ctx.log, paths }, input);
  ctx.log.info(`loaded the node image ${report.nodeImages.join(", ")} into ${engine.name}`);
  if (report.clusterImages.length > 0) {
    ctx.log.info(`kept ${report.clusterImages.join(", ")} in ${paths.imagesDir}: \`u7s up\` imports them into new nodes (\`u7s load-image --archive ${input}\` into a running one)`);
  }
  for (const ref of report.nodeImages) ctx.out.write(`${ref}\n`);
}

/** image is `u7s image build|save|load`: the node image, and bundles for hosts without registry access. */
export const image: CommandDef = {
  name: "image",
  group: "image",
  summary: "build the node image, or save/load one bundle of every image a node needs (airgapped hosts)",
  usage: "build|save|load [flags]   (save -o FILE [--include IMAGE]... [--image REF]; load -i FILE)",
  description:
    "build  builds the node image from the embedded Dockerfile (prints its tag).\n" +
    "save   writes ONE archive: the node image (built if missing, or --image REF) and the images the cluster\n" +
    "       needs that the node image lacks (Flannel's: " + FLANNEL_IMAGES.join(", ") + "; more with --include),\n" +
    "       pulled if not present, with SHA256SUMS and a manifest. Written aside, renamed when complete.\n" +
    "load   checks every image of an archive against its checksum (a truncated or corrupt one changes\n" +
    "       nothing; a FIFO, device or directory is refused at once, a manifest over 1 MiB too), loads the node image into the engine and keeps the cluster images under\n" +
    "       $XDG_DATA_HOME/u7s/HOST/images; `u7s up` imports them into the node's containerd (k8s.io)\n" +
    "       before anything would pull them.",
  settings: true,
  maxPositionals: 1,
  options: {
    output: { type: "string", short: "o", value: "FILE", description: "save: the bundle to write" },
    input: { type: "string", short: "i", value: "FILE", description: "load: the bundle to load" },
    include: { type: "string", multiple: true, value: "IMAGE", description: "save: one more image for the node's containerd (repeatable)" },
    image: { type: "string", value: "REF", description: "save: this node image instead of the one u7s builds" },
    "dry-run": { type: "boolean", description: "build: print the engine command and run none" },
  },
  examples: ["u7s image build", "u7s image save -o u7s-images.tar --include ghcr.io/org/app:v1", "u7s image load -i u7s-images.tar"],
  async run(ctx, args) {
    const sub = args.positionals[0];
    if (sub === "build") return build(ctx, args);
    if (sub === "save") return save(ctx, args);
    if (sub === "load") return load(ctx, args);
    throw new UsageError(sub === undefined ? "u7s image: say what to do: build, save or load" : `u7s image: unknown subcommand ${JSON.stringify(sub)} (valid: ${SUBCOMMANDS.join(", ")})`, {
      hint: "see `u7s image --help`",
    });
  },
};
