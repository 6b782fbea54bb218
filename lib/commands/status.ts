import { existingVolumes } from "../node/lifecycle.ts";
import { nodeNames } from "../node/names.ts";
import { relayReport } from "../relay/lifecycle.ts";
import { nodeContext } from "./_node.ts";
import { boolFlag, jsonFlag } from "./_shared.ts";
import type { CommandDef } from "./_types.ts";

/** status shows the engine and the node container's state. */
export const status: CommandDef = {
  name: "status",
  group: "node",
  summary: "show the node's state (--json for scripts)",
  description: "Shows the engine (and whether it is rootless), the node container's state, its IP, published ports,\nvolumes and image, systemd's state in the node, and which path Flannel's VXLAN to other\nhosts takes (vxlan: \"relay\", through u7s's relay on host sockets, or \"engine\", through the engine's network) and why. Exits 0 whatever the state; `state` is \"absent\" when there is no node.",
  settings: true,
  options: jsonFlag,
  examples: ["u7s status", "u7s status --json | jq -r .node.state"],
  async run(ctx, args) {
    const { config, engine } = await nodeContext(ctx);
    const names = nodeNames(config);
    const info = await engine.info();
    const state = await engine.inspectContainer(names.container);
    const volumes = await existingVolumes(engine, names);
    let systemd: string | null = null;
    if (state?.running) {
      const r = await engine.exec(names.container, ["systemctl", "is-system-running"]);
      systemd = r.stdout.trim() || null;
    }
    const vxlan = await relayReport({ config, engine, log: ctx.log, env: ctx.env, hostname: ctx.host.hostname() }, state);
    const report = {
      engine: { name: engine.name, binary: engine.binary, version: info.version, rootless: info.rootless, cgroupVersion: info.cgroupVersion ?? null },
      node: {
        name: names.container,
        state: state?.status ?? "absent",
        running: state?.running ?? false,
        systemd,
        image: state?.image ?? null,
        network: names.network,
        ip: state?.networks[names.network] ?? null,
        ports: state?.ports ?? [],
        volumes,
      },
      vxlan,
      settings: { NODE_NAME: config.nodeName, NODE_IP: config.nodeIp, NODE_SUBNET: config.nodeSubnet, HOST_IP: config.hostIp, NODE_MTU: config.nodeMtu ?? null },
    };
    if (boolFlag(args, "json")) {
      ctx.out.write(`${JSON.stringify(report, null, 2)}\n`);
      return;
    }
    const n = report.node;
    const lines = [
      `engine:   ${engine.name} ${info.version} (${info.rootless ? "rootless" : "NOT rootless"}, cgroup v${info.cgroupVersion ?? "?"})`,
      `node:     ${n.name} ${n.state}${n.systemd ? ` (systemd ${n.systemd})` : ""}`,
      `image:    ${n.image ?? "-"}`,
      `ip:       ${n.ip ?? "-"} on ${n.network}${config.nodeMtu === undefined ? "" : ` (MTU ${config.nodeMtu})`}`,
      `ports:    ${n.ports.length ? n.ports.map((p) => `${p.host}->${p.container}/${p.protocol}`).join(", ") : "-"}`,
      `volumes:  ${volumes.length ? volumes.join(", ") : "-"}`,
      `vxlan:    ${vxlan.path === "relay" ? "relay" : "engine"} path: ${vxlan.why}${vxlan.node ? ` (egress ${vxlan.node.stats.egress.packets} / ingress ${vxlan.node.stats.ingress.packets} datagrams)` : ""}`,
    ];
    ctx.out.write(`${lines.join("\n")}\n`);
  },
};
