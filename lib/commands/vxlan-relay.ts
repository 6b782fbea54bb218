import { UsageError } from "../errors.ts";
import { nodeNames } from "../node/names.ts";
import { relayPaths, serveHostRelay } from "../relay/host.ts";
import { cleanupNodeRelay, runNodeRelay } from "../relay/node.ts";
import { boolFlag } from "./_shared.ts";
import type { CommandDef } from "./_types.ts";

/** stopSignal aborts on SIGTERM or SIGINT (systemd stops a unit with SIGTERM, systemd.kill(5)). */
function stopSignal(): AbortSignal {
  const ac = new AbortController();
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => ac.abort());
  return ac.signal;
}

/** vxlanRelay runs one side of the VXLAN relay (internal: `u7s up` starts both; see lib/relay/). */
export const vxlanRelay: CommandDef = {
  name: "vxlan-relay",
  group: "node",
  summary: "internal: one side of the VXLAN relay (`up` starts both; host: on the host, node: in the node)",
  usage: "host|node [--cleanup] [flags]",
  description:
    "Internal; `u7s up` runs both sides when U7S_VXLAN_RELAY is on (the default). `host` runs as the user on\n" +
    "the host: it binds HOST_IP:PORT_FLANNEL/udp and hands that socket to the node's relay over a unix socket\n" +
    "of mode 0600 in $XDG_RUNTIME_DIR/u7s/HOST/NODE_NAME/ (peers of another uid are refused), until the node\n" +
    "is gone or `u7s down` stops it. `node` runs in the node (systemd unit u7s-vxlan-relay): it fetches the\n" +
    "socket, relays Flannel's VXLAN datagrams for the cluster's hosts through it and steers them there with\n" +
    "iptables rules of its own (chain U7S-VXLAN-RELAY); `node --cleanup` takes those rules out.",
  settings: true,
  maxPositionals: 1,
  options: {
    cleanup: { type: "boolean", description: "node: remove the steering rules and exit" },
  },
  examples: ["u7s vxlan-relay host", "u7s vxlan-relay node"],
  async run(ctx, args) {
    const side = args.positionals[0];
    const log = (line: string) => process.stderr.write(`u7s vxlan-relay ${side}: ${line}\n`);
    if (side === "node") {
      if (boolFlag(args, "cleanup")) return cleanupNodeRelay(ctx.runner, log);
      return runNodeRelay({ run: ctx.runner, log, signal: stopSignal() });
    }
    if (side === "host") {
      const config = await ctx.config();
      const engine = await ctx.engine();
      const paths = relayPaths(ctx.env, ctx.host.hostname(), config.nodeName);
      const name = nodeNames(config).container;
      return serveHostRelay(paths, config, { nodeExists: async () => (await engine.inspectContainer(name)) !== undefined, log, signal: stopSignal() });
    }
    throw new UsageError(`u7s vxlan-relay: ${side === undefined ? "missing side" : `unknown side ${JSON.stringify(side)}`} (valid: host, node)`);
  },
};
