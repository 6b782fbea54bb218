import { UsageError } from "../errors.ts";
import { downNode } from "../node/lifecycle.ts";
import { downRelay } from "../relay/lifecycle.ts";
import { removeCredentials } from "./_credentials.ts";
import { boolFlag, dryRunFlag } from "./_shared.ts";
import { applierFor, nodeContext, nodeLock } from "./_node.ts";
import type { Args, CommandDef, Ctx } from "./_types.ts";
import { jobOptions, refuseJobFlags } from "../job/flags.ts";

async function runDown(ctx: Ctx, args: Args, volumes: boolean) {
  const { config, engine } = await nodeContext(ctx);
  const applier = applierFor(ctx, args);
  const go = async () => {
    await downNode({ config, engine, log: ctx.log, applier }, { volumes });
    // the relay's host side holds PORT_FLANNEL for the node: it goes with it
    if (!applier.dryRun) await downRelay({ config, log: ctx.log, env: ctx.env, hostname: ctx.host.hostname(), runner: ctx.runner });
    // -v: the cluster's data is gone, so what reaches it goes too
    if (volumes && !applier.dryRun) await removeCredentials(ctx, config);
  };
  // A dry run changes nothing, so it neither waits for nor blocks another command.
  await (applier.dryRun ? go() : nodeLock(ctx, config, volumes ? "u7s down -v" : "u7s down", go));
}

/** down removes the node container and network; -v also its volumes. */
export const down: CommandDef = {
  name: "down",
  group: "node",
  summary: "stop and remove the node (-v: and its volumes and credentials)",
  description:
    "Removes the node container and its network; the volumes (/var, /opt, /etc: the cluster's state) are\n" +
    "kept unless -v is given. -v also removes what reaches the cluster it destroyed, and says what: the node's\n" +
    "kubeconfig and join file under $XDG_CONFIG_HOME/u7s/HOST/NODE_NAME/ and its context, cluster and user in\n" +
    "$KUBECONFIG's first file or ~/.kube/config (as `kubeconfig --merge` wrote them; entries changed since are\n" +
    "kept and named; every other entry stays byte-identical). Only objects u7s created for this node (label\n" +
    "io.u7s.node=NODE_NAME) are removed: a network or volume of that name without the label is kept and named,\n" +
    "with the command that would remove it. Does nothing, successfully, when there is nothing to remove. Waits\n" +
    "for another u7s command on the node.\n" +
    "--job removes this host's part of a batch job's cluster (see `u7s up --help`, \"Batch jobs\"): a running\n" +
    "`u7s up --job` of the job is sent SIGTERM and does it; after a SIGKILL, u7s removes the node, the private\n" +
    "engine and the scratch directory from the state recorded there, and on the control plane's host the job's\n" +
    "files in the home. Nothing of another job or tenant is touched.",
  settings: true,
  options: {
    volumes: { type: "boolean", short: "v", description: "also remove the node's volumes (all cluster state on this host)" },
    ...dryRunFlag,
    ...jobOptions,
  },
  examples: ["u7s down", "u7s down -v", "u7s down -v --dry-run", "srun --ntasks-per-node=1 u7s down --job   # in an epilog, or after the job's steps"],
  async run(ctx, args) {
    if (boolFlag(args, "job")) {
      if (boolFlag(args, "dry-run")) throw new UsageError("u7s down: --job and --dry-run do not go together");
      return (await import("../job/command.ts")).runJobDown(ctx, args);
    }
    refuseJobFlags(args, Object.keys(jobOptions));
    return runDown(ctx, args, boolFlag(args, "volumes"));
  },
};

/** downV is upstream's `make down-v`: the same as `down -v`. */
export const downV: CommandDef = {
  ...down,
  name: "down-v",
  summary: "same as `down -v` (upstream's name)",
  description: "Upstream's `make down-v`: removes the node container, its network and its volumes, and the node's credentials (see `u7s down --help`).",
  options: dryRunFlag,
  examples: ["u7s down-v"],
  run: (ctx, args) => runDown(ctx, args, true),
};
