import { joinFileFor } from "../cluster/kubeadm.ts";
import { renderJoinFile } from "../cluster/join-file.ts";
import { UsageError } from "../errors.ts";
import { writeFileAtomic } from "../state/files.ts";
import { clusterContext, requireControlPlane } from "./_cluster.ts";
import { stringFlag } from "./_shared.ts";
import type { CommandDef } from "./_types.ts";

// kubeadm's --ttl takes a Go duration; 0 means a token that never expires.
const GO_DURATION = /^(0|([0-9]+(\.[0-9]+)?(h|m|s))+)$/;

/** joinCommand writes the join file a worker needs: data, not a script. */
export const joinCommand: CommandDef = {
  name: "join-command",
  group: "cluster",
  summary: "write the join file for workers (mode 0600) and print its path",
  description:
    "Asks the control plane for a bootstrap token (`kubeadm token create --print-join-command`) and writes a\n" +
    "join file: the control plane's HOST_IP, NODE_NAME, apiserver port, PORT_FLANNEL and NODE_SUBNET and the\n" +
    "kubeadm join arguments, as JSON that `u7s kubeadm-join` / `u7s up --join` validate before use (it is never\n" +
    "run by a shell). Written atomically with mode 0600 to $XDG_CONFIG_HOME/u7s/HOST/NODE_NAME/join.json unless\n" +
    "-o is given; it holds a secret: copy it to workers over a safe channel.",
  settings: true,
  options: {
    output: { type: "string", short: "o", value: "FILE", description: "write here instead (- for stdout)" },
    ttl: { type: "string", value: "DURATION", description: "how long the token stays valid (default 24h; 0 = forever)" },
  },
  examples: ["u7s join-command", "u7s join-command --ttl 2h -o /tmp/join.json", "scp \"$(u7s join-command)\" worker:join.json"],
  async run(ctx, args) {
    const ttl = stringFlag(args, "ttl") ?? "24h";
    if (!GO_DURATION.test(ttl)) throw new UsageError(`--ttl=${JSON.stringify(ttl)}: not a duration (valid: e.g. 30m, 24h, 1h30m, or 0 for never)`);
    const output = stringFlag(args, "output");
    if (output === "") throw new UsageError('-o "": not a file (valid: a path, or - for stdout)');
    const { env, paths } = await clusterContext(ctx);
    await requireControlPlane(env, "join-command");
    const text = renderJoinFile(await joinFileFor(env, ttl, new Date()));
    if (output === "-") {
      ctx.out.write(text);
      return;
    }
    const file = output ?? paths.joinFile;
    await writeFileAtomic(file, text);
    ctx.log.info(`wrote ${file} (mode 0600, token valid for ${ttl === "0" ? "ever" : ttl}); on a worker: u7s up --join FILE`);
    ctx.out.write(`${file}\n`);
  },
};
