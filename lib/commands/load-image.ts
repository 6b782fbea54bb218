import { nodeContext } from "./_node.ts";
import type { CommandDef } from "./_types.ts";
import type { ClusterEnv } from "../cluster/node.ts";
import { U7sError, UsageError } from "../errors.ts";
import { formatCommand } from "../exec.ts";
import { hasManifest, readArchive, verifyBundle } from "../image/bundle.ts";
import { importArchive, importMember, withSavedImage } from "../image/node-images.ts";
import { isImageRef } from "../node/image.ts";
import { runningNode } from "../node/lifecycle.ts";
import { hostDataPaths } from "../state/paths.ts";
import { stringFlag } from "./_shared.ts";

/** IMAGE_ARCHIVE_MARKERS are the files an image archive holds: docker-archive's manifest.json, OCI's index.json. */
const IMAGE_ARCHIVE_MARKERS = ["manifest.json", "index.json"];

/** loadImage imports images into the running node's containerd (k8s.io), like `kind load docker-image` / `image-archive`. */
export const loadImage: CommandDef = {
  name: "load-image",
  group: "image",
  summary: "import images into the running node's containerd (k8s.io), like `kind load`",
  usage: "IMAGE... | --archive FILE",
  description:
    "IMAGE...        images of this host's engine (saved from it, then imported; nothing is pulled).\n" +
    "--archive FILE  an image archive (`docker save` / `podman save`, docker-archive or OCI), or a u7s bundle\n" +
    "                (`u7s image save`: checked whole first, then its cluster images are imported).\n" +
    "The kubelet then finds them without a registry (use imagePullPolicy: IfNotPresent, or a tag other than :latest).",
  settings: true,
  maxPositionals: 99,
  options: {
    archive: { type: "string", value: "FILE", description: "import the images of this archive (an image archive, or a bundle from `u7s image save`)" },
  },
  examples: ["u7s load-image localhost/my-app:v1", "u7s load-image --archive my-app.tar", "u7s load-image --archive u7s-images.tar"],
  async run(ctx, args) {
    const refs = args.positionals;
    const archive = stringFlag(args, "archive");
    if (refs.length === 0 && (archive === undefined || archive === "")) {
      throw new UsageError("u7s load-image: name images (IMAGE...) or an archive (--archive FILE)", { hint: "see `u7s load-image --help`" });
    }
    const badRefs = refs.filter((r) => !isImageRef(r));
    if (badRefs.length > 0) throw new UsageError(badRefs.map((r) => `${JSON.stringify(r)}: not an image reference (valid: [REGISTRY/]NAME[:TAG][@DIGEST])`));
    const { config, engine } = await nodeContext(ctx);
    await runningNode(config, engine);
    const env: ClusterEnv = { config, engine, log: ctx.log };
    const scratch = hostDataPaths(ctx.env, ctx.host.hostname()).imagesDir;
    // Every image named must be here before any is imported.
    const missing: string[] = [];
    for (const ref of refs) if (!(await engine.imageExists(ref))) missing.push(ref);
    if (missing.length > 0) {
      throw new U7sError(`not present in ${engine.name}: ${missing.join(", ")}; nothing was imported`, {
        hint: `pull ${missing.length === 1 ? "it" : "them"} here (\`${formatCommand(engine.pullArgs(missing[0]!))}\`), or on a host with registry access save ${missing.length === 1 ? "it" : "them"} (\`${formatCommand(engine.saveArgs(missing[0]!, "FILE"))}\`) and import the file here (\`u7s load-image --archive FILE\`)`,
      });
    }
    const read = archive === undefined ? undefined : await readArchive(archive);
    const bundle = archive !== undefined && read && hasManifest(read.members) ? await verifyBundle(archive, read) : undefined;
    if (archive !== undefined && read && !bundle && !read.members.some((m) => IMAGE_ARCHIVE_MARKERS.includes(m.name))) {
      throw new U7sError(`${archive} is neither an image archive (no manifest.json or index.json) nor a u7s bundle; nothing was imported`, {
        hint: "make one with `docker save -o FILE IMAGE` (or podman save), or `u7s image save -o FILE`",
      });
    }
    for (const ref of refs) {
      await ctx.log.step(`Importing ${ref} into the node's containerd`, () => withSavedImage({ engine, runner: ctx.runner }, ref, scratch, (file) => importArchive(env, file, ref)));
    }
    if (archive !== undefined && bundle) {
      for (const img of bundle.manifest.images.filter((i) => i.role === "cluster")) {
        await ctx.log.step(`Importing ${img.ref} into the node's containerd`, () => importMember(env, archive, bundle.members.get(img.file)!, img.ref, scratch));
      }
    } else if (archive !== undefined) {
      await ctx.log.step(`Importing ${archive} into the node's containerd`, () => importArchive(env, archive, archive));
    }
    ctx.log.info(`node ${config.nodeName}: see them with \`u7s exec -- ctr --namespace k8s.io images ls\``);
  },
};
