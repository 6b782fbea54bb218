import { hostSide, samePublishedPort, type Publish } from "../config/publish.ts";
import { U7sError } from "../errors.ts";
import { addForwarders, listForwarders, nodePublished, publishProblem, removeForwarders, type AddEnv, type Forwarder } from "../node/forward.ts";
import { ADMIN_CONF, KUBELET_CONF, kubectl, nodeRole, type ClusterEnv } from "./node.ts";

/** ServicePort is a node port a Service of the cluster opens on every node, with the Services that use it. */
export interface ServicePort {
  publish: Publish;
  /** services: namespace/name of each Service with this node port (normally one). */
  services: string[];
}

interface ServiceList {
  items?: {
    metadata?: { namespace?: string; name?: string };
    spec?: { type?: string; ports?: { nodePort?: number; protocol?: string }[] | null };
  }[];
}

/**
 * nodePortsOf reads `kubectl get services -A -o json` and returns every node port of a NodePort or
 * LoadBalancer Service (the host port is the node port itself), sorted by port; SCTP ports are left
 * out (no engine publishes SCTP).
 */
export function nodePortsOf(json: string): ServicePort[] {
  let list: ServiceList;
  try {
    list = JSON.parse(json) as ServiceList;
  } catch {
    throw new U7sError("kubectl printed something that is not JSON for `get services -A -o json`", { detail: json.trim().slice(0, 300) || undefined });
  }
  const byPort = new Map<string, ServicePort>();
  for (const s of list.items ?? []) {
    if (s.spec?.type !== "NodePort" && s.spec?.type !== "LoadBalancer") continue;
    const who = `${s.metadata?.namespace ?? "default"}/${s.metadata?.name ?? "?"}`;
    for (const p of s.spec.ports ?? []) {
      const protocol = (p.protocol ?? "TCP").toLowerCase();
      if (protocol !== "tcp" && protocol !== "udp") continue;
      const port = p.nodePort;
      if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) continue; // LoadBalancer without node ports
      const key = `${port}/${protocol}`;
      const entry = byPort.get(key) ?? { publish: { hostPort: port, nodePort: port, protocol }, services: [] };
      if (!entry.services.includes(who)) entry.services.push(who);
      byPort.set(key, entry);
    }
  }
  return [...byPort.values()].sort((a, b) => a.publish.hostPort - b.publish.hostPort || a.publish.protocol.localeCompare(b.publish.protocol));
}

/** SyncReport is what one `u7s port sync` round did, one line per port. */
export interface SyncReport {
  published: string[];
  unpublished: string[];
  /** problems: node ports that could not be published (taken on the host, the node's own port, a failed run). */
  problems: string[];
}

/** serviceKubeconfig is the kubeconfig in the node that may list Services: admin's on a control plane, the kubelet's on a worker (the node authorizer lets a kubelet list Services). */
export async function serviceKubeconfig(env: ClusterEnv): Promise<string> {
  const role = await nodeRole(env);
  if (role === "control-plane") return ADMIN_CONF;
  if (role === "worker") return KUBELET_CONF;
  throw new U7sError(`node ${env.config.nodeName} is not in a cluster: it has no Services to publish`, { hint: "bring the cluster up with `u7s up` (or join one with `u7s up --join FILE`)" });
}

/** WATCH_SECONDS: a Service watch ends itself after this long (and is started again), so one left behind by a killed u7s does not run on. */
export const WATCH_SECONDS = 300;

/** servicesArgs is the kubectl command that lists every Service (watch: one line per change, for WATCH_SECONDS). */
export const servicesArgs = (watch: boolean): string[] =>
  watch
    ? ["get", "services", "--all-namespaces", "--watch-only", "--output", "name", `--request-timeout=${WATCH_SECONDS}s`]
    : ["get", "services", "--all-namespaces", "--output", "json"];

/**
 * syncServicePorts publishes on the host every node port of the cluster's NodePort and LoadBalancer
 * Services that is not published yet, and removes the forwarders an earlier sync made for node ports
 * that are gone (forwarders of `u7s port add` and the node's `--publish` ports are never touched).
 * A forwarder relaying to an old node address is made anew.
 */
export async function syncServicePorts(env: AddEnv, kubeconfig: string): Promise<SyncReport> {
  const { config, engine, host } = env;
  const json = await kubectl({ config, engine, log: env.log }, servicesArgs(false), { env: { KUBECONFIG: kubeconfig } });
  const wanted = nodePortsOf(json);
  const node = await nodePublished(engine, config);
  const forwarders = await listForwarders(engine, config);
  const report: SyncReport = { published: [], unpublished: [], problems: [] };
  const wants = (f: Forwarder) => wanted.some((w) => samePublishedPort(w.publish, f.publish) && w.publish.nodePort === f.publish.nodePort);
  const stale = (f: Forwarder) => f.target !== node.nodeIp;
  const gone = forwarders.filter((f) => f.by === "sync" && (!wants(f) || stale(f)));
  // first remove, so that a node port that moved can take a port just freed
  await removeForwarders(env, gone);
  for (const f of gone.filter((g) => !wants(g))) report.unpublished.push(`${hostSide(f.publish)} (no Service has node port ${f.publish.nodePort} any more)`);
  const kept = forwarders.filter((f) => !gone.includes(f));
  for (const w of wanted) {
    const what = `node port ${hostSide(w.publish)} of ${w.services.join(", ")}`;
    if (kept.some((f) => samePublishedPort(f.publish, w.publish)) || node.publish.some((q) => samePublishedPort(q, w.publish))) continue;
    const problem = await publishProblem(w.publish, node, kept, host);
    if (problem !== undefined) {
      report.problems.push(`${what}: not published: ${problem}`);
      continue;
    }
    try {
      await addForwarders(env, node, [w.publish], "sync");
      report.published.push(what);
    } catch (err) {
      report.problems.push(`${what}: not published: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`);
    }
  }
  return report;
}
