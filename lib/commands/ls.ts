import { nodeRole, type Role } from "../cluster/node.ts";
import type { NodeConfig } from "../config/resolve.ts";
import { detectEngine } from "../engine/detect.ts";
import type { ContainerState, Engine, PortSpec } from "../engine/engine.ts";
import { ENGINES } from "../engine/types.ts";
import { U7sError } from "../errors.ts";
import { LABEL_NODE, LABEL_SETTINGS, LABEL_TENANT } from "../node/names.ts";
import { boolFlag, jsonFlag } from "./_shared.ts";
import type { CommandDef, Ctx } from "./_types.ts";

/** ListedNode is one line of `u7s ls`. */
export interface ListedNode {
  name: string;
  tenant: number;
  engine: string;
  /** state: the container's status (running, exited, ...). */
  state: string;
  /** role: control-plane, worker or none; null when the node is not running (nobody can tell). */
  role: Role | null;
  ports: PortSpec[];
  image: string;
}

/**
 * listEngines are the engines `u7s ls` asks: the one CONTAINER_ENGINE (or --container-engine)
 * names, else every engine CLI on PATH, so nodes of every tenant and every engine show.
 */
function listEngines(ctx: Ctx, config: NodeConfig): { engine: Engine; explicit: boolean }[] {
  const source = config.sources.CONTAINER_ENGINE;
  if (config.containerEngine !== undefined && (source === "flag" || source === "env")) {
    return [{ engine: detectEngine(config, ctx.runner), explicit: true }];
  }
  return ENGINES.filter((e) => ctx.host.which(e) !== undefined).map((e) => ({
    engine: detectEngine({ ...config, containerEngine: e, containerEngineType: e }, ctx.runner),
    explicit: false,
  }));
}

/** listNodes lists the u7s nodes (containers with u7s's settings label) of one engine, with their roles. */
export async function listNodes(ctx: Ctx, config: NodeConfig, engine: Engine): Promise<ListedNode[]> {
  const states = await engine.listLabelled(LABEL_SETTINGS);
  const out: ListedNode[] = [];
  for (const s of states) {
    const name = s.labels[LABEL_NODE] ?? s.name;
    out.push({
      name,
      tenant: tenantOf(s),
      engine: engine.name,
      state: s.status,
      role: s.running ? await roleOf(ctx, config, engine, s) : null,
      ports: s.ports,
      image: s.image,
    });
  }
  return out;
}

/** tenantOf reads a node's tenant label; none (upstream's and tenant 0's containers) is tenant 0. */
function tenantOf(s: ContainerState): number {
  const t = s.labels[LABEL_TENANT];
  return t !== undefined && /^[0-9]+$/.test(t) ? Number(t) : 0;
}

/** roleOf asks the cluster layer what a running node is; a node that stops meanwhile has no role to tell. */
async function roleOf(ctx: Ctx, config: NodeConfig, engine: Engine, s: ContainerState): Promise<Role | null> {
  try {
    return await nodeRole({ config: { ...config, nodeName: s.name }, engine, log: ctx.log });
  } catch {
    return null;
  }
}

/** formatPorts renders published ports as `HOST/PROTO` (or `HOST->NODE/PROTO` when they differ). */
function formatPorts(ports: readonly PortSpec[]): string {
  if (ports.length === 0) return "-";
  return ports.map((p) => (p.host === p.container ? `${p.host}/${p.protocol}` : `${p.host}->${p.container}/${p.protocol}`)).join(",");
}

/** ls lists this user's u7s nodes on this host: every tenant, on every engine on PATH (or the one configured). */
export const ls: CommandDef = {
  name: "ls",
  aliases: ["list"],
  group: "node",
  summary: "list this user's nodes on this host: tenant, engine, state, role, ports (--json)",
  description:
    "Lists every u7s node container of this user (label io.u7s.settings), whatever its tenant: on the engine\n" +
    "CONTAINER_ENGINE names, or else on every engine CLI on PATH that answers. The role (control-plane,\n" +
    "worker, none) is asked of running nodes; a stopped node shows `-` (null in --json).",
  settings: true,
  options: jsonFlag,
  examples: ["u7s ls", "u7s ls --json | jq -r '.[] | select(.tenant == 3) | .name'"],
  async run(ctx, args) {
    const config = await ctx.config();
    const engines = listEngines(ctx, config);
    if (engines.length === 0) {
      throw new U7sError(config.engineNotFound ?? "no container engine found", { hint: "install rootless Docker, Podman or nerdctl, or set CONTAINER_ENGINE" });
    }
    const nodes: ListedNode[] = [];
    const failures: U7sError[] = [];
    for (const { engine, explicit } of engines) {
      try {
        nodes.push(...(await listNodes(ctx, config, engine)));
      } catch (err) {
        if (explicit || !(err instanceof U7sError)) throw err;
        ctx.log.debug(`${engine.name}: ${err.message} (its nodes are not listed)`);
        failures.push(err);
      }
    }
    // Only when no engine answered is that an error; an installed but unused engine is not.
    if (failures.length === engines.length) throw failures[0]!;
    nodes.sort((a, b) => a.engine.localeCompare(b.engine) || a.tenant - b.tenant || a.name.localeCompare(b.name));
    if (boolFlag(args, "json")) {
      ctx.out.write(`${JSON.stringify(nodes, null, 2)}\n`);
      return;
    }
    if (nodes.length === 0) {
      ctx.log.info(`no u7s nodes on this host (asked: ${engines.map((e) => e.engine.name).join(", ")})`);
      return;
    }
    const rows = [["NODE", "TENANT", "ENGINE", "STATE", "ROLE", "PORTS"], ...nodes.map((n) => [n.name, String(n.tenant), n.engine, n.state, n.role ?? "-", formatPorts(n.ports)])];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    ctx.out.write(rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n") + "\n");
  },
};
