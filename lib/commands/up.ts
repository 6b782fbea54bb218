import { UsageError } from "../errors.ts";
import { upNode } from "../node/lifecycle.ts";
import { isImageRef } from "../node/image.ts";
import { boolFlag, dryRunFlag, positiveSeconds, stringFlag } from "./_shared.ts";
import { applierFor, nodeContext, nodeLock } from "./_node.ts";
import type { CommandDef } from "./_types.ts";

/** up creates and starts this host's node (network, volumes, image, container) and waits for systemd. */
export const up: CommandDef = {
  name: "up",
  group: "node",
  summary: "create and start this host's node",
  description:
    "Creates the node's network (NODE_SUBNET), its volumes for /var, /opt and /etc, the node image (built from\n" +
    "the embedded Dockerfile unless --image is given) and the node container, then waits until systemd in the\n" +
    "node is running (or degraded). A node that exists is started, or waited for while it boots; one whose\n" +
    "network was removed is repaired. If the settings changed, `up` says what changed and recreates the node\n" +
    "only with --recreate (volumes are kept; if that fails, the old node is restored). Busy ports, a subnet\n" +
    "used by another network and a missing image are reported before anything is created or removed.\n" +
    "Refuses a rootful engine unless --allow-rootful. Waits for another u7s command on the same node.",
  settings: true,
  options: {
    image: { type: "string", value: "REF", description: "run this local image; build nothing" },
    recreate: { type: "boolean", description: "recreate the node if its settings changed (volumes are kept)" },
    timeout: { type: "string", value: "SECONDS", description: "how long to wait for systemd in the node (default 180)" },
    "allow-rootful": { type: "boolean", description: "run the node on a rootful engine (it then has root's powers over this host)" },
    ...dryRunFlag,
  },
  examples: ["u7s up", "u7s up --image localhost/my-node:v1", "PORT_KUBE_APISERVER=16443 u7s up --recreate", "u7s up --dry-run"],
  async run(ctx, args) {
    const timeoutSeconds = positiveSeconds(args, "timeout", 180);
    const image = stringFlag(args, "image");
    if (image !== undefined && !isImageRef(image)) {
      throw new UsageError(`--image=${JSON.stringify(image)}: not an image reference (valid: [REGISTRY/]NAME[:TAG][@DIGEST] in lowercase, e.g. localhost/u7s-node:v1, or an image ID)`);
    }
    const { config, engine } = await nodeContext(ctx);
    for (const w of config.warnings ?? []) ctx.log.warn(w);
    const applier = applierFor(ctx, args);
    const opts = { image, recreate: boolFlag(args, "recreate"), timeoutSeconds, allowRootful: boolFlag(args, "allow-rootful") };
    const go = () => upNode({ config, engine, host: ctx.host, log: ctx.log, applier, runner: ctx.runner, env: ctx.env }, opts);
    // A dry run changes nothing, so it neither waits for nor blocks another command.
    await (applier.dryRun ? go() : nodeLock(ctx, config, "u7s up", go));
  },
};
