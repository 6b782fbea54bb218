import { UsageError } from "../errors.ts";
import { upNode } from "../node/lifecycle.ts";
import { boolFlag, dryRunFlag, positiveSeconds, stringFlag } from "./_shared.ts";
import { applierFor, nodeContext } from "./_node.ts";
import type { CommandDef } from "./_types.ts";

/** up creates and starts this host's node (network, volumes, image, container) and waits for systemd. */
export const up: CommandDef = {
  name: "up",
  group: "node",
  summary: "create and start this host's node",
  description:
    "Creates the node's network (NODE_SUBNET), its volumes for /var, /opt and /etc, the node image (built from\n" +
    "the embedded Dockerfile unless --image is given) and the node container, then waits until systemd in the\n" +
    "node is running. A second `up` does nothing; if the settings changed, it says what changed and recreates\n" +
    "the node only with --recreate (volumes are kept). Ports in use are reported before anything is created.",
  settings: true,
  options: {
    image: { type: "string", value: "REF", description: "run this local image; build nothing" },
    recreate: { type: "boolean", description: "recreate the node if its settings changed (volumes are kept)" },
    timeout: { type: "string", value: "SECONDS", description: "how long to wait for systemd in the node (default 180)" },
    ...dryRunFlag,
  },
  examples: ["u7s up", "u7s up --image localhost/my-node:v1", "PORT_KUBE_APISERVER=16443 u7s up --recreate", "u7s up --dry-run"],
  async run(ctx, args) {
    const timeoutSeconds = positiveSeconds(args, "timeout", 180);
    const image = stringFlag(args, "image");
    if (image !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$/.test(image)) {
      throw new UsageError(`--image=${JSON.stringify(image)}: not an image reference (e.g. localhost/u7s-node:v1)`);
    }
    const { config, engine } = await nodeContext(ctx);
    const applier = applierFor(ctx, args);
    if (!applier.dryRun) await engine.info(); // fail early, and clearly, when the engine does not answer
    await upNode(
      { config, engine, host: ctx.host, log: ctx.log, applier, runner: ctx.runner, env: ctx.env },
      { image, recreate: boolFlag(args, "recreate"), timeoutSeconds },
    );
  },
};
