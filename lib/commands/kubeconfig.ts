import { join } from "node:path";
import { readLocalKubeconfig } from "../cluster/bringup.ts";
import { KUBECONFIG_MAX_BYTES, linkTarget, mergeKubeconfig, withKubeconfigLock } from "../cluster/kubeconfig.ts";
import { U7sError, UsageError } from "../errors.ts";
import { refuseNonRegular, writeFileAtomic } from "../state/files.ts";
import { readUserFileIfExists } from "../state/user-file.ts";
import { clusterContext, requireControlPlane } from "./_cluster.ts";
import { boolFlag, stringFlag } from "./_shared.ts";
import type { CommandDef } from "./_types.ts";
import { jobOptions } from "../job/flags.ts";

/** mergeTarget is the file `--merge` updates: $KUBECONFIG's first file, else ~/.kube/config (as kubectl picks). */
export function mergeTarget(env: Readonly<Record<string, string | undefined>>): string {
  const first = (env.KUBECONFIG ?? "").split(":").find((p) => p !== "");
  if (first) return first;
  if (!env.HOME) throw new U7sError("neither KUBECONFIG nor HOME is set: no kubeconfig to merge into", { hint: "use -o FILE" });
  return join(env.HOME, ".kube", "config");
}

/** kubeconfig writes the admin kubeconfig for this host, pointing at https://127.0.0.1:PORT_KUBE_APISERVER. */
export const kubeconfig: CommandDef = {
  name: "kubeconfig",
  group: "cluster",
  summary: "write the admin kubeconfig for this host (0600) and print `export KUBECONFIG=...`",
  description:
    "Reads the node's /etc/kubernetes/admin.conf, points it at https://127.0.0.1:PORT_KUBE_APISERVER and names\n" +
    "its cluster, user and context after the node. By default it is written (atomically, mode 0600) to\n" +
    "$XDG_CONFIG_HOME/u7s/HOST/NODE_NAME/kubeconfig, one file per host, so hosts sharing a home never clash.\n" +
    "-o FILE writes there instead (a regular file or a new one: a directory, symbolic link, FIFO or device there\n" +
    "is refused with exit code 2), -o - prints it. --merge adds or updates that one context in $KUBECONFIG's\n" +
    "first file (or ~/.kube/config), leaving every other entry byte-identical, under kubectl's lock file; a\n" +
    "symbolic link there stays a link and the file it points to is updated, as kubectl does. `u7s down -v` and\n" +
    "`u7s kubeadm-reset` remove the node's kubeconfig and its merged entries again.\n" +
    "--job (in a batch job whose hosts run `u7s up --job`) writes nothing: it waits until the job's control plane\n" +
    "wrote the kubeconfig to the shared home and --nodes hosts' nodes are Ready (at most --timeout; a failed\n" +
    "control plane fails it with its reason), then prints `export KUBECONFIG=FILE`; FILE points at the control\n" +
    "plane's HOST_IP, so it works on every host of the job.",
  settings: true,
  options: {
    output: { type: "string", short: "o", value: "FILE", description: "write here instead (- for stdout)" },
    merge: { type: "boolean", description: "merge into $KUBECONFIG's first file or ~/.kube/config" },
    job: { type: "boolean", description: "the batch job's cluster (`u7s up --job`): wait until it is Ready and print its kubeconfig's export line" },
    "job-id": jobOptions["job-id"]!,
    nodes: { type: "string", value: "N", description: "--job: wait until N nodes are Ready (default 1, the control plane), e.g. $SLURM_JOB_NUM_NODES" },
    timeout: { type: "string", value: "SECONDS", description: "--job: how long to wait (default 600)" },
  },
  examples: ["eval \"$(u7s kubeconfig)\" && kubectl get nodes", "u7s kubeconfig -o - > admin.conf", "u7s kubeconfig --merge && kubectl --context u7s-$(hostname) get nodes", "eval \"$(u7s kubeconfig --job --nodes $SLURM_JOB_NUM_NODES)\"   # in a batch job (u7s up --job)"],
  async run(ctx, args) {
    if (boolFlag(args, "job")) {
      const other = ["output", "merge"].find((f) => args.values[f] !== undefined);
      if (other) throw new UsageError(`u7s kubeconfig: --job and --${other} do not go together (--job prints the job's kubeconfig's export line)`);
      return (await import("../job/command.ts")).runJobKubeconfig(ctx, args);
    }
    for (const f of ["job-id", "nodes", "timeout"]) if (args.values[f] !== undefined) throw new UsageError(`--${f} goes with --job`, { hint: "add --job, or leave it out" });
    const output = stringFlag(args, "output");
    const merge = boolFlag(args, "merge");
    if (output !== undefined && merge) throw new UsageError("u7s kubeconfig: -o and --merge do not go together (choose one)");
    if (output === "") throw new UsageError('-o "": not a file (valid: a path, or - for stdout)');
    // before asking the node anything: a target u7s would not write is bad input
    if (output !== undefined && output !== "-") await refuseNonRegular(output);
    const { env, paths } = await clusterContext(ctx);
    await requireControlPlane(env, "kubeconfig");
    const text = await readLocalKubeconfig(env);
    const name = env.config.nodeName;
    if (output === "-") {
      ctx.out.write(text);
      return;
    }
    if (merge) {
      const target = mergeTarget(ctx.env);
      // kubectl locks the path it was given and writes through a link to its target: so does u7s.
      const file = await linkTarget(target);
      await withKubeconfigLock(target, async () => {
        const existing = (await readUserFileIfExists(file, { what: "kubeconfig", maxBytes: KUBECONFIG_MAX_BYTES })) ?? "";
        await writeFileAtomic(file, mergeKubeconfig(existing, text, name, file));
      });
      ctx.log.info(`merged context ${name} into ${target}${file === target ? "" : ` (a link to ${file})`}`);
      ctx.out.write(`kubectl config use-context ${name}\n`);
      return;
    }
    const file = output ?? paths.kubeconfig;
    await writeFileAtomic(file, text);
    ctx.log.info(`wrote ${file} (mode 0600)`);
    ctx.out.write(`export KUBECONFIG=${file}\n`);
  },
};
