import { joinFileFor } from "../cluster/kubeadm.ts";
import { renderJoinFile } from "../cluster/join-file.ts";
import { renderUpstreamJoinCommand } from "../cluster/upstream-join.ts";
import { UsageError } from "../errors.ts";
import { writeFileAtomic } from "../state/files.ts";
import { clusterContext, requireControlPlane } from "./_cluster.ts";
import { stringFlag } from "./_shared.ts";
import type { CommandDef } from "./_types.ts";

// kubeadm's --ttl takes a Go duration; 0 means a token that never expires.
const GO_DURATION = /^(0|([0-9]+(\.[0-9]+)?(h|m|s))+)$/;

// json: u7s's join file; upstream: upstream Usernetes's join-command script (lib/cluster/upstream-join.ts).
const FORMATS = ["json", "upstream"] as const;

/** joinCommand writes the join file a worker needs: data (JSON), or upstream's join-command script for an upstream worker. */
export const joinCommand: CommandDef = {
  name: "join-command",
  group: "cluster",
  summary: "write the join file for workers (mode 0600) and print its path",
  description:
    "Asks the control plane for a bootstrap token (`kubeadm token create --print-join-command`) and writes a\n" +
    "join file: the control plane's HOST_IP, NODE_NAME, apiserver port, PORT_FLANNEL and NODE_SUBNET and the\n" +
    "kubeadm join arguments, as JSON that `u7s kubeadm-join` / `u7s up --join` validate before use (it is never\n" +
    "run by a shell). Written atomically with mode 0600 to $XDG_CONFIG_HOME/u7s/HOST/NODE_NAME/join.json unless\n" +
    "-o is given; it holds a secret: copy it to workers over a safe channel.\n" +
    "--format upstream writes upstream Usernetes's join-command script instead (line for line as its\n" +
    "`make join-command` does; default name join-command, mode 0700: upstream runs it as a program) for an\n" +
    "upstream worker: copy it into its usernetes directory and run `make kubeadm-join` there. This control\n" +
    "plane's sync service syncs the new node; no `make sync-external-ip` is needed. u7s reads that file too.",
  settings: true,
  options: {
    output: { type: "string", short: "o", value: "FILE", description: "write here instead (- for stdout)" },
    ttl: { type: "string", value: "DURATION", description: "how long the token stays valid (default 24h; 0 = forever)" },
    format: { type: "string", value: "FORMAT", description: "json (u7s's join file, the default) or upstream (upstream's join-command script)" },
  },
  examples: [
    "u7s join-command",
    "u7s join-command --ttl 2h -o /tmp/join.json",
    "scp \"$(u7s join-command)\" worker:join.json",
    "scp \"$(u7s join-command --format upstream)\" upstream-worker:usernetes/join-command",
  ],
  async run(ctx, args) {
    const ttl = stringFlag(args, "ttl") ?? "24h";
    if (!GO_DURATION.test(ttl)) throw new UsageError(`--ttl=${JSON.stringify(ttl)}: not a duration (valid: e.g. 30m, 24h, 1h30m, or 0 for never)`);
    const format = stringFlag(args, "format") ?? "json";
    if (!(FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format=${JSON.stringify(format)}: not a join file format (valid: ${FORMATS.join(", ")})`);
    const upstream = format === "upstream";
    const output = stringFlag(args, "output");
    if (output === "") throw new UsageError('-o "": not a file (valid: a path, or - for stdout)');
    const { env, paths } = await clusterContext(ctx);
    await requireControlPlane(env, "join-command");
    const join = await joinFileFor(env, ttl, new Date());
    const text = upstream ? renderUpstreamJoinCommand(join) : renderJoinFile(join);
    if (output === "-") {
      ctx.out.write(text);
      return;
    }
    const file = output ?? (upstream ? paths.upstreamJoinFile : paths.joinFile);
    // Upstream's `make kubeadm-join` executes the file (its Makefile makes it executable): owner-only, like a secret.
    const mode = upstream ? 0o700 : 0o600;
    await writeFileAtomic(file, text, mode);
    const valid = `token valid for ${ttl === "0" ? "ever" : ttl}`;
    const next = upstream
      ? "on an upstream worker: copy it to its usernetes directory as join-command, then `make kubeadm-join` (on a u7s worker: u7s up --join FILE)"
      : "on a worker: u7s up --join FILE";
    ctx.log.info(`wrote ${file} (mode ${mode.toString(8).padStart(4, "0")}, ${valid}); ${next}`);
    ctx.out.write(`${file}\n`);
  },
};
