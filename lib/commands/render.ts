import { DOCKERFILE, ENTRYPOINT_SCRIPT, nodeImageRef } from "../assets.ts";
import { composeFile } from "../node/compose.ts";
import { UsageError } from "../errors.ts";
import { kubeadmConfig } from "../cluster/kubeadm-config.ts";
import { nodeSpec } from "../node/spec.ts";
import { relayPaths } from "../relay/host.ts";
import { publishMountOptions, stringFlag } from "./_shared.ts";
import type { CommandDef, Ctx } from "./_types.ts";

/** RENDER_TARGETS are what `u7s render` prints; the first is the default. */
export const RENDER_TARGETS = ["compose", "kubeadm-config", "dockerfile", "entrypoint"] as const;
/** RenderTarget is one of RENDER_TARGETS. */
export type RenderTarget = (typeof RENDER_TARGETS)[number];

// Same shape `u7s up --image` accepts: the value only lands in YAML, but a typo should not.
const IMAGE_REF = /^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$/;

async function renderCompose(ctx: Ctx, image: string): Promise<string> {
  const config = await ctx.config();
  const runtimeDir = ctx.env.XDG_RUNTIME_DIR;
  const spec = nodeSpec(config, {
    image,
    hostPaths: { boot: ctx.host.exists("/boot"), libModules: ctx.host.exists("/lib/modules") },
    bypass4netns:
      config.containerEngineType === "nerdctl" && runtimeDir !== undefined && runtimeDir !== "" && ctx.host.exists(`${runtimeDir}/bypass4netnsd.sock`),
    // the relay's directories as `up` mounts them (none without a runtime directory: `up` refuses then)
    relay: config.vxlanRelay && runtimeDir?.startsWith("/") ? relayPaths(ctx.env, ctx.host.hostname(), config.nodeName) : undefined,
  });
  return composeFile(spec, config);
}

/** render prints the compose file, kubeadm config, Dockerfile or entrypoint u7s uses, with every value filled in. */
export const render: CommandDef = {
  name: "render",
  group: "info",
  summary: "print the compose file, kubeadm config or Dockerfile",
  usage: `[${RENDER_TARGETS.join("|")}] [flags]`,
  description:
    "compose (the default): the compose YAML equivalent to the node `u7s up` creates; kubeadm-config: the kubeadm\n" +
    "v1beta4 configuration `kubeadm init` gets; dockerfile and entrypoint: the node image's embedded build files.\n" +
    "Nothing runs on the container engine.",
  settings: true,
  maxPositionals: 1,
  options: {
    image: { type: "string", value: "REF", description: `compose: the node image (default: the built image, ${nodeImageRef()})` },
    ...publishMountOptions,
  },
  examples: ["u7s render > compose.yaml", "u7s render kubeadm-config", "u7s render dockerfile", "NODE_NAME=u7s-a u7s render compose --image localhost/my-node:v1"],
  async run(ctx, args) {
    const target = args.positionals[0] ?? RENDER_TARGETS[0];
    if (!(RENDER_TARGETS as readonly string[]).includes(target)) {
      throw new UsageError(`u7s render: unknown target ${JSON.stringify(target)} (valid: ${RENDER_TARGETS.join(", ")})`, {
        hint: "see `u7s render --help`",
      });
    }
    const image = stringFlag(args, "image");
    if (image !== undefined && !IMAGE_REF.test(image)) {
      throw new UsageError(`--image=${JSON.stringify(image)}: not an image reference (e.g. localhost/u7s-node:v1)`);
    }
    let text: string;
    switch (target as RenderTarget) {
      case "compose":
        text = await renderCompose(ctx, image ?? nodeImageRef());
        break;
      case "kubeadm-config":
        text = kubeadmConfig(await ctx.config());
        break;
      case "dockerfile":
        text = DOCKERFILE;
        break;
      case "entrypoint":
        text = ENTRYPOINT_SCRIPT;
        break;
    }
    ctx.out.write(text.endsWith("\n") ? text : `${text}\n`);
  },
};
