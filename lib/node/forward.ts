import type { Applier } from "../apply.ts";
import type { NodeConfig } from "../config/resolve.ts";
import { formatPublish, hostSide, parsePublish, parsePublishRecord, samePublishedPort, type Publish } from "../config/publish.ts";
import type { ContainerState, Engine, ForwarderSpec } from "../engine/engine.ts";
import { U7sError } from "../errors.ts";
import { formatCommand } from "../exec.ts";
import type { HostProbe } from "../host/probe.ts";
import type { Log } from "../log.ts";
import { LABEL_NODE, nodeNames } from "./names.ts";
import { createdSettings } from "./spec.ts";

/**
 * Port forwarders publish a node port on the host while the node runs. No engine can add a published
 * port to a running container, so each forwarded port gets its own small container: made from the
 * node's image (it carries socat, so nothing is pulled), on the node's network, publishing the port
 * and relaying every connection (or datagram) to NODE_IP. Restart policy always: it comes back with
 * the engine, as the node does. One container per port, so adding or removing one never interrupts
 * another. Labelled with the node (LABEL_NODE), so `u7s down` removes them.
 */

/** LABEL_COMPONENT says what an engine object of a node is; forwarders carry FORWARDER. */
export const LABEL_COMPONENT = "io.u7s.component";
/** FORWARDER is LABEL_COMPONENT's value on a port forwarder. */
export const FORWARDER = "port-forwarder";
/** LABEL_FORWARD records the forwarded port, `[HOST_IP:]HOST_PORT:NODE_PORT/PROTO`. */
export const LABEL_FORWARD = "io.u7s.forward";
/** LABEL_FORWARD_BY records who made the forwarder: `add` (u7s port add) or `sync` (u7s port sync, which removes only its own). */
export const LABEL_FORWARD_BY = "io.u7s.forward.by";
/** LABEL_FORWARD_TARGET records the node address the forwarder relays to (NODE_IP when it was made). */
export const LABEL_FORWARD_TARGET = "io.u7s.forward.target";

/** ForwardBy is who made a forwarder. */
export type ForwardBy = "add" | "sync";

/** Forwarder is one port forwarder of a node, as the engine reports it. */
export interface Forwarder {
  name: string;
  publish: Publish;
  by: ForwardBy;
  /** target: the node address it relays to. */
  target: string;
  state: ContainerState;
}

/** forwarderName is the container name of a node's forwarder for a host port: NODE_NAME-port-PORT-PROTO. */
export function forwarderName(config: Pick<NodeConfig, "nodeName">, p: Publish): string {
  return `${nodeNames(config).container}-port-${p.hostPort}-${p.protocol}`;
}

/**
 * relayCommand is socat relaying a port to the node: TCP with a process per connection; UDP with a
 * process per peer (each reply goes back to the peer that sent the datagram). Buffers: socat's default
 * 8 KiB would cut every larger datagram short, and costs TCP a system call per 8 KiB (bench/port-forward.ts).
 */
export function relayCommand(p: Publish, nodeIp: string): string[] {
  return p.protocol === "tcp"
    ? ["socat", "-b", "262144", `TCP-LISTEN:${p.nodePort},fork,reuseaddr`, `TCP:${nodeIp}:${p.nodePort}`]
    : ["socat", "-b", "65536", `UDP-RECVFROM:${p.nodePort},fork,reuseaddr`, `UDP-SENDTO:${nodeIp}:${p.nodePort}`];
}

/** forwarderSpec is the forwarder of one port of a node: the node's image and network, relaying to nodeIp. */
export function forwarderSpec(config: Pick<NodeConfig, "nodeName">, image: string, nodeIp: string, p: Publish, by: ForwardBy): ForwarderSpec {
  return {
    name: forwarderName(config, p),
    image,
    network: nodeNames(config).network,
    // the forwarder listens on the node port itself, so `ENGINE ps` reads like the node's ports
    port: { ...(p.hostIp !== undefined ? { hostIp: p.hostIp } : {}), host: p.hostPort, container: p.nodePort, protocol: p.protocol },
    command: relayCommand(p, nodeIp),
    labels: {
      [LABEL_NODE]: config.nodeName,
      [LABEL_COMPONENT]: FORWARDER,
      [LABEL_FORWARD]: formatPublish(p),
      [LABEL_FORWARD_BY]: by,
      [LABEL_FORWARD_TARGET]: nodeIp,
    },
  };
}

/** listForwarders returns the node's port forwarders (running or not), sorted by host port. */
export async function listForwarders(engine: Engine, config: Pick<NodeConfig, "nodeName">): Promise<Forwarder[]> {
  const found: Forwarder[] = [];
  for (const state of await engine.listContainers({ [LABEL_NODE]: config.nodeName, [LABEL_COMPONENT]: FORWARDER })) {
    const p = parsePublish(state.labels[LABEL_FORWARD] ?? "");
    if (typeof p === "string") continue; // not one of ours (a hand-made container with our labels)
    found.push({ name: state.name, publish: p, by: state.labels[LABEL_FORWARD_BY] === "sync" ? "sync" : "add", target: state.labels[LABEL_FORWARD_TARGET] ?? "", state });
  }
  return found.sort((a, b) => a.publish.hostPort - b.publish.hostPort || a.publish.protocol.localeCompare(b.publish.protocol));
}

/** ForwardEnv is what adding and removing forwarders works with. */
export interface ForwardEnv {
  config: NodeConfig;
  engine: Engine;
  log: Log;
  applier: Applier;
}

/**
 * removeForwarders removes the given forwarders (default: every forwarder of the node), one step
 * each; it returns how many it removed. `u7s down` calls it before removing the node's network.
 */
export async function removeForwarders(env: ForwardEnv, which?: readonly Forwarder[]): Promise<number> {
  const list = which ?? (await listForwarders(env.engine, env.config));
  for (const f of list) {
    await env.applier.apply(`Removing port forwarder ${f.name} (${hostSide(f.publish)})`, env.engine.removeContainerArgs(f.name));
  }
  return list.length;
}

/** NodePublished is what a node publishes itself: its four ports and its `up --publish` ports, from its settings record. */
export interface NodePublished {
  /** own: the node's four ports by setting name (PORT_ETCD: 2379, ...). */
  own: Record<string, number>;
  /** publish: the node's --publish ports. */
  publish: Publish[];
  /** image: the image the node runs (the forwarders' image). */
  image: string;
  /** nodeIp: the node's address on its network (the forwarders' target). */
  nodeIp: string;
}

/** nodePublished reads what an existing u7s node publishes, from its container; it throws when there is no such node. */
export async function nodePublished(engine: Engine, config: NodeConfig): Promise<NodePublished> {
  const names = nodeNames(config);
  const state = await engine.inspectContainer(names.container);
  if (!state) throw new U7sError(`node ${names.container} does not exist`, { hint: "create it with `u7s up`" });
  const record = createdSettings(state);
  if (record === undefined || state.labels[LABEL_NODE] !== config.nodeName) {
    throw new U7sError(`the container ${names.container} was not created by u7s`, { hint: "choose another NODE_NAME, or remove it and run `u7s up`" });
  }
  const own: Record<string, number> = {};
  for (const k of ["PORT_ETCD", "PORT_KUBELET", "PORT_FLANNEL", "PORT_KUBE_APISERVER"]) {
    const n = Number(record[k]);
    if (Number.isInteger(n) && n > 0) own[k] = n;
  }
  return {
    own,
    publish: parsePublishRecord(record.U7S_PUBLISH ?? "") ?? [],
    image: record.image || state.image,
    // the address the engine gave it (a stopped container may have none): else the recorded NODE_IP
    nodeIp: state.networks[names.network] || record.NODE_IP || config.nodeIp,
  };
}

/** AddEnv is what addForwarders works with. */
export interface AddEnv extends ForwardEnv {
  host: HostProbe;
}

/**
 * publishProblem says why a host port cannot get a forwarder, or undefined when it can: the node's own
 * port, already published (by the node or a forwarder), or taken on the host by another program.
 */
export async function publishProblem(p: Publish, node: NodePublished, forwarders: readonly Forwarder[], host: HostProbe, otherTenants?: ReadonlyMap<number, string>): Promise<string | undefined> {
  const own = Object.entries(node.own).find(([, port]) => port === p.hostPort);
  if (own) return `host port ${p.hostPort} is the node's own ${own[0]}`;
  const tenant = otherTenants?.get(p.hostPort);
  if (tenant !== undefined) return `host port ${p.hostPort} is ${tenant} (tenants never share a port)`;
  const up = node.publish.find((q) => samePublishedPort(p, q));
  if (up) return `port ${hostSide(p)} is already published by the node (\`u7s up --publish ${formatPublish(up)}\`)`;
  const f = forwarders.find((q) => samePublishedPort(p, q.publish));
  if (f) return `port ${hostSide(p)} is already published (to node port ${f.publish.nodePort}, by \`u7s port ${f.by}\`)`;
  const verdict = await host.portFree(p.hostPort, p.protocol);
  if (verdict === "in-use") return `port ${hostSide(p)} is already in use on this host`;
  if (verdict === "denied") return `port ${hostSide(p)} is privileged and cannot be published by a rootless engine (use a port of 1024 or more, e.g. ${p.hostPort + 30000}:${p.nodePort})`;
  return undefined;
}

/**
 * addForwarders starts a forwarder for each port, in order. When one fails, the forwarders this call
 * started are removed again (newest first) and the error says what could not be.
 */
export async function addForwarders(env: AddEnv, node: NodePublished, ports: readonly Publish[], by: ForwardBy): Promise<void> {
  const { config, engine, applier } = env;
  const made: string[] = [];
  for (const p of ports) {
    const spec = forwarderSpec(config, node.image, node.nodeIp, p, by);
    try {
      await applier.apply(`Publishing ${hostSide(p)} -> ${node.nodeIp}:${p.nodePort} (forwarder ${spec.name})`, engine.forwarderRunArgs(spec));
    } catch (err) {
      // `run` may have left its container behind (created, not started): remove it with this call's others
      const half = await engine.inspectContainer(spec.name).catch(() => undefined);
      const ours = half !== undefined && half.labels[LABEL_COMPONENT] === FORWARDER && half.labels[LABEL_NODE] === config.nodeName;
      const left: string[] = [];
      for (const name of [...made, ...(ours ? [spec.name] : [])].reverse()) {
        const argv = engine.removeContainerArgs(name);
        await applier.apply(`Removing port forwarder ${name} again`, argv).catch(() => left.push(`forwarder ${name} (remove it: \`${formatCommand(argv)}\`)`));
      }
      if (left.length === 0 || !(err instanceof U7sError)) throw err;
      throw new U7sError(err.message, { detail: [err.detail, "could not undo:", ...left.map((l) => `  ${l}`)].filter(Boolean).join("\n"), hint: err.hint, cause: err });
    }
    made.push(spec.name);
  }
}

/**
 * detachStale removes the node's forwarders that relay to another address than nodeIp and returns
 * them: before `up --recreate` moves the node to a new address (and perhaps a new network, which the
 * engine will not remove while forwarders are attached). reattach starts them again afterwards.
 */
export async function detachStale(env: ForwardEnv, nodeIp: string): Promise<Forwarder[]> {
  const stale = (await listForwarders(env.engine, env.config)).filter((f) => f.target !== nodeIp);
  await removeForwarders(env, stale);
  return stale;
}

/** reattach starts detached forwarders again for the node as it is now; one that cannot be is a warning with the command that brings it back. */
export async function reattach(env: AddEnv, list: readonly Forwarder[]): Promise<void> {
  if (list.length === 0) return;
  const node = await nodePublished(env.engine, env.config).catch(() => undefined);
  for (const f of list) {
    try {
      if (!node) throw new U7sError("the node is gone");
      await addForwarders(env, node, [f.publish], f.by);
    } catch (err) {
      env.log.warn(`port ${hostSide(f.publish)} is no longer published: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`, `publish it again with \`u7s port add ${formatPublish(f.publish)}\``);
    }
  }
}
