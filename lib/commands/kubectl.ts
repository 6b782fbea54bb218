import { rename, rm, stat, chmod } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { ADMIN_CONF, inNode } from "../cluster/node.ts";
import { U7sError, UsageError } from "../errors.ts";
import { check } from "../exec.ts";
import { runningNode } from "../node/lifecycle.ts";
import { nodeNames } from "../node/names.ts";
import { clusterContext } from "./_cluster.ts";
import { nodeContext } from "./_node.ts";
import { boolFlag, stringFlag } from "./_shared.ts";
import type { CommandDef } from "./_types.ts";

/** kubectl runs kubectl inside the node with the admin credentials: a host needs no kubectl at all. */
export const kubectl: CommandDef = {
  name: "kubectl",
  group: "cluster",
  summary: "run kubectl in the node with admin credentials (all arguments are kubectl's)",
  usage: "ARG...",
  description:
    "Every argument after `kubectl` goes to kubectl in the node unchanged (so `u7s kubectl --help` is kubectl's\n" +
    "help; this text is `u7s help kubectl`). stdin is passed through, a terminal is allocated when stdin and\n" +
    "stdout are terminals, and the exit code is kubectl's. Settings come from the environment only.",
  rawArgs: true,
  settings: true,
  examples: ["u7s kubectl get nodes -o wide", "u7s kubectl apply -f - < app.yaml", "u7s kubectl -n kube-system logs -l k8s-app=kube-dns"],
  async run(ctx, args) {
    const { config, engine } = await nodeContext(ctx);
    await runningNode(config, engine);
    const argv = engine.execArgs(nodeNames(config).container, ["kubectl", ...args.rest], {
      interactive: true,
      tty: ctx.stdinIsTTY && ctx.out.isTTY, // a TTY would merge stderr into stdout for `| grep`
      env: { KUBECONFIG: ADMIN_CONF },
    });
    return (await ctx.runner(argv, { inherit: true })).exitCode;
  },
};

/** kubectlBinary copies the node's kubectl to the host (upstream's `make kubectl`). */
export const kubectlBinary: CommandDef = {
  name: "kubectl-binary",
  group: "cluster",
  summary: "copy the node's kubectl binary to the host (upstream's `make kubectl`)",
  description: "Copies the kubectl of the node image (the cluster's version) to FILE (default ./kubectl), mode 0755.\nAn existing file is kept unless --force is given.",
  settings: true,
  options: {
    output: { type: "string", short: "o", value: "FILE", description: "where to write it (default ./kubectl)" },
    force: { type: "boolean", description: "replace an existing file" },
  },
  examples: ["u7s kubectl-binary -o ~/.local/bin/kubectl"],
  async run(ctx, args) {
    const out = resolve(stringFlag(args, "output") ?? "kubectl");
    const exists = await stat(out).then(() => true, () => false);
    if (exists && !boolFlag(args, "force")) throw new UsageError(`${out} exists; not replacing it (add --force to replace it)`);
    const { env } = await clusterContext(ctx);
    await runningNode(env.config, env.engine);
    const src = (await inNode(env, ["sh", "-c", "command -v kubectl"])).stdout.trim();
    if (src === "") throw new U7sError("the node has no kubectl");
    const tmp = `${dirname(out)}/.kubectl.${process.pid}.tmp`;
    try {
      await check(ctx.runner, env.engine.copyFromArgs(nodeNames(env.config).container, src, tmp));
      await chmod(tmp, 0o755);
      await rename(tmp, out);
    } finally {
      await rm(tmp, { force: true });
    }
    ctx.log.info(`copied ${src} from the node to ${out}`);
  },
};
