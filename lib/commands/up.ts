import { UsageError } from "../errors.ts";
import { detachStale, reattach } from "../node/forward.ts";
import { upNode } from "../node/lifecycle.ts";
import { downRelay, prepareRelay, upRelay } from "../relay/lifecycle.ts";
import { isImageRef } from "../node/image.ts";
import { importLoadedImages } from "../image/node-images.ts";
import { joinFromPath } from "../state/join-from.ts";
import { hostDataPaths } from "../state/paths.ts";
import { boolFlag, dryRunFlag, positiveSeconds, publishMountOptions, stringFlag } from "./_shared.ts";
import { clusterAfterUp, loadJoinFile } from "./_cluster.ts";
import { clusterOptions, controlPlaneTaintOption, waitOption } from "./_cluster-flags.ts";
import { applierFor, nodeContext, nodeLock } from "./_node.ts";
import type { CommandDef } from "./_types.ts";
import { JOB_HELP, jobOptions, jobUpOptions, refuseJobFlags } from "../job/flags.ts";

/** up creates and starts this host's node (network, volumes, image, container) and waits for systemd. */
export const up: CommandDef = {
  name: "up",
  group: "node",
  summary: "create this host's node and bring up (or join) the cluster",
  description:
    "Creates the node's network (NODE_SUBNET), its volumes for /var, /opt and /etc, the node image (built from\n" +
    "the embedded Dockerfile unless --image is given) and the node container, then waits until systemd in the\n" +
    "node is running (or degraded). Meanwhile it reads the node's journal and console (systemd's): a boot\n" +
    "that cannot go on (the user's inotify instances used up, fs.inotify.max_user_instances; /proc, /sys or\n" +
    "cgroups that cannot be mounted; cgroups it cannot create or join) stops `up` within seconds, naming the\n" +
    "cause and the fix, the node left for `u7s logs` and `u7s down`. A node that exists is started, or\n" +
    "waited for while it boots; one whose network was removed is repaired. If the settings changed, `up`\n" +
    "says what changed and recreates the node only with --recreate (volumes are kept; if that fails, the\n" +
    "old node is restored). Busy ports, a subnet used by another network and a missing image are reported\n" +
    "before anything is created or removed.\n" +
    "First runs check-preflight's host checks (cgroups, linger, kernel modules, rp_filter in the engine's\n" +
    "network namespace, room for one more node in the inotify limits: the lower of the host's and the engine's\n" +
    "user namespace's own, and in the user's kernel key quota), as upstream's `make up` does: an error stops\n" +
    "`up` before anything is created (with the fix; --skip-preflight goes on anyway), a warning is printed.\n" +
    "Refuses a rootful engine unless --allow-rootful. Waits for another u7s command on the same node.\n" +
    "Images loaded on this host with `u7s image load` are imported into the node's containerd first.\n" +
    "Then, unless --no-init: a fresh node becomes a control plane (kubeadm init, sync-external-ip, Flannel,\n" +
    "kubeconfig; each skipped when done), or with --join FILE a worker of that cluster (FILE: u7s's join\n" +
    "file, or upstream Usernetes's join-command script, read as data and never run; --join-from HOST: the\n" +
    "join file HOST's `u7s join-command` wrote to a shared home). A new control plane is schedulable:\n" +
    "kubeadm's node-role.kubernetes.io/control-plane:NoSchedule taint is removed unless --control-plane-taint.\n" +
    "Then it waits until this node is Ready (--wait, default 5m; 0 returns at once), saying what it waits for\n" +
    "(the CNI, the Flannel pod, the node's condition); on timeout it fails with the node's conditions and the\n" +
    "Flannel pod's last events (--no-init: no cluster, no wait). An initialised or joined node is never\n" +
    "initialised or joined again. --tenant N (U7S_TENANT) runs another node on this host: own ports, names\n" +
    "and subnet. Flannel's VXLAN to other hosts goes through u7s's relay on host sockets (--vxlan-relay=on,\n" +
    "the default): `up` starts its host side, which binds HOST_IP:PORT_FLANNEL/udp (the engine does not\n" +
    "publish it), and the node's unit u7s-vxlan-relay. Where the user has a systemd manager, the host side runs\n" +
    "from a unit `up` writes and enables ($XDG_CONFIG_HOME/systemd/user/u7s-vxlan-relay-HOST-NODE_NAME.service;\n" +
    "`down` removes it), so it comes back at boot with the node; without one, `up` says that after a reboot\n" +
    "`u7s up` must run again. --vxlan-relay=off (U7S_VXLAN_RELAY) keeps upstream's path through the engine's\n" +
    "published port. `u7s status` says which path the node uses.\n" +
    JOB_HELP,
  settings: true,
  options: {
    image: { type: "string", value: "REF", description: "run this local image; build nothing" },
    recreate: { type: "boolean", description: "recreate the node if its settings changed (volumes are kept)" },
    timeout: { type: "string", value: "SECONDS", description: "how long to wait for systemd in the node (default 180); with --job: how long a worker waits for the control plane's join file (default 600)" },
    "no-init": { type: "boolean", description: "create the node only (upstream's `make up`): no kubeadm init, Flannel or kubeconfig" },
    join: { type: "string", value: "FILE", description: "join the cluster of this join file (from `u7s join-command`, or upstream's join-command, read as data) instead of creating one" },
    "join-from": { type: "string", value: "HOST", description: "join the cluster whose control plane runs on HOST, reading its join file from the shared home (or HOST/NODE, or a file)" },
    "allow-rootful": { type: "boolean", description: "run the node on a rootful engine (it then has root's powers over this host)" },
    "skip-preflight": { type: "boolean", description: "do not run check-preflight's host checks first (cgroups, kernel modules, rp_filter in the engine's namespace, linger, inotify and key quota room)" },
    ...controlPlaneTaintOption,
    ...waitOption,
    ...publishMountOptions,
    ...dryRunFlag,
    ...jobOptions,
    ...jobUpOptions,
  },
  examples: ["u7s up", "u7s up --join join.json", "u7s up --join-from login1", "u7s up --no-init", "u7s up --control-plane-taint --wait 10m", "u7s up --image localhost/my-node:v1", "PORT_KUBE_APISERVER=16443 u7s up --recreate", "u7s up --publish 30080 --mount /srv/data:/data:ro", "u7s up --dry-run", "srun --ntasks-per-node=1 u7s up --job --image-archive ~/u7s-images.tar &"],
  async run(ctx, args) {
    if (boolFlag(args, "job")) return (await import("../job/command.ts")).runJobUp(ctx, args);
    refuseJobFlags(args, [...Object.keys(jobOptions), ...Object.keys(jobUpOptions)]);
    const timeoutSeconds = positiveSeconds(args, "timeout", 180);
    const image = stringFlag(args, "image");
    if (image !== undefined && !isImageRef(image)) {
      throw new UsageError(`--image=${JSON.stringify(image)}: not an image reference (valid: [REGISTRY/]NAME[:TAG][@DIGEST] in lowercase, e.g. localhost/u7s-node:v1, or an image ID)`);
    }
    const noInit = boolFlag(args, "no-init");
    const joinFrom = stringFlag(args, "join-from");
    if (joinFrom !== undefined && stringFlag(args, "join") !== undefined) throw new UsageError("u7s up: --join and --join-from do not go together (give one join file)");
    const joinPath = joinFrom !== undefined ? joinFromPath(ctx.env, joinFrom) : stringFlag(args, "join");
    if (noInit && joinPath !== undefined) throw new UsageError("u7s up: --no-init and --join do not go together (--join initialises the node as a worker)");
    const cluster = clusterOptions(args, ctx.env);
    const { config, engine } = await nodeContext(ctx);
    // The join file is checked before anything is created: a bad one changes nothing.
    const join = joinPath === undefined ? undefined : await loadJoinFile(joinPath, config, ctx.log);
    for (const w of config.warnings ?? []) ctx.log.warn(w);
    const applier = applierFor(ctx, args);
    const opts = { image, recreate: boolFlag(args, "recreate"), timeoutSeconds, allowRootful: boolFlag(args, "allow-rootful"), skipPreflight: boolFlag(args, "skip-preflight") };
    const go = async () => {
      // A recreate may move the node to a new address: port forwarders relaying to the old one are
      // taken off its network first and started again for the node as it ends up (lib/node/forward.ts).
      const moved = opts.recreate && !applier.dryRun ? await detachStale({ config, engine, log: ctx.log, applier }, config.nodeIp) : [];
      const relayEnv = { config, engine, log: ctx.log, env: ctx.env, hostname: ctx.host.hostname(), runner: ctx.runner };
      if (!applier.dryRun) prepareRelay(relayEnv);
      // recreating without the relay: the engine publishes PORT_FLANNEL again, so the host side must let go of it first
      if (!applier.dryRun && opts.recreate && !config.vxlanRelay) await downRelay(relayEnv);
      try {
        await upNode({ config, engine, host: ctx.host, log: ctx.log, applier, runner: ctx.runner, env: ctx.env }, opts);
      } finally {
        await reattach({ config, engine, log: ctx.log, applier, host: ctx.host }, moved);
      }
      if (!applier.dryRun) await upRelay(relayEnv);
      // Images a bundle brought to this host (`u7s image load`) go into the node before anything pulls.
      if (!applier.dryRun) await importLoadedImages({ config, engine, log: ctx.log }, hostDataPaths(ctx.env, ctx.host.hostname()), ctx.log);
      if (!applier.dryRun && !noInit) await clusterAfterUp(ctx, config, engine, join, cluster);
    };
    // A dry run changes nothing, so it neither waits for nor blocks another command.
    await (applier.dryRun ? go() : nodeLock(ctx, config, "u7s up", go));
  },
};
