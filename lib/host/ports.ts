import type { NodeConfig } from "../config/resolve.ts";
import { formatMount, formatPublish, hostSide, MOUNT_ENV, PUBLISH_ENV } from "../config/publish.ts";
import type { PortSpec } from "../engine/engine.ts";
import type { HostProbe } from "./probe.ts";

/** NodePorts lists the node's published ports with the setting each comes from. */
export function nodePorts(c: NodeConfig): { setting: string; port: number; protocol: "tcp" | "udp" }[] {
  return [
    { setting: "PORT_ETCD", port: c.portEtcd, protocol: "tcp" },
    { setting: "PORT_KUBE_APISERVER", port: c.portKubeApiserver, protocol: "tcp" },
    { setting: "PORT_KUBELET", port: c.portKubelet, protocol: "tcp" },
    { setting: "PORT_FLANNEL", port: c.portFlannel, protocol: "udp" },
  ];
}

/**
 * busyPorts returns one line per node port that this host cannot give the node (ports the node
 * itself holds excepted): held by another program (on IPv4 or IPv6), or privileged.
 */
export async function busyPorts(c: NodeConfig, host: HostProbe, heldByNode: readonly PortSpec[] = []): Promise<string[]> {
  const problems: string[] = [];
  for (const p of nodePorts(c)) {
    if (heldByNode.some((h) => h.host === p.port && h.protocol === p.protocol)) continue;
    const verdict = await host.portFree(p.port, p.protocol);
    if (verdict === "in-use") {
      const holder = host.portHolder?.(p.port, p.protocol);
      problems.push(`port ${p.port}/${p.protocol} (${p.setting}) is already in use on this host${holder ? `, ${holder}` : ""}`);
    }
    if (verdict === "denied") problems.push(`port ${p.port}/${p.protocol} (${p.setting}) is privileged and cannot be published by a rootless engine`);
  }
  return problems;
}

/** portHint says what to do about busyPorts' findings: privileged ports get their own advice. */
export function portHint(problems: readonly string[]): string {
  const privileged = problems.some((p) => p.includes("privileged"));
  const other = "stop what uses the port, or choose other ports, e.g. `PORT_KUBE_APISERVER=16443 u7s up` (or see `u7s up --help` for --port-* flags)";
  if (!privileged) return other;
  return "ports below 1024 are privileged: choose a port of 1024 or more (e.g. `PORT_KUBE_APISERVER=16443 u7s up`), or let unprivileged users bind lower ports with `sudo sysctl net.ipv4.ip_unprivileged_port_start=PORT` (see rootlesscontaine.rs/getting-started/common/sysctl/)";
}

/**
 * publishMountProblems checks what only the host can tell about `up --publish` and `--mount`: each
 * extra host port free (ports the node itself holds excepted) and each mount's SRC present. One line
 * per problem, naming the flag or variable it came from.
 */
export async function publishMountProblems(c: NodeConfig, host: HostProbe, heldByNode: readonly PortSpec[] = []): Promise<string[]> {
  const problems: string[] = [];
  const publishName = c.sources[PUBLISH_ENV] === "flag" ? "--publish" : PUBLISH_ENV;
  for (const p of c.publish) {
    if (heldByNode.some((h) => h.host === p.hostPort && h.protocol === p.protocol)) continue;
    const verdict = await host.portFree(p.hostPort, p.protocol);
    if (verdict === "in-use") {
      const holder = host.portHolder?.(p.hostPort, p.protocol);
      problems.push(`${publishName}=${formatPublish(p)}: port ${hostSide(p)} is already in use on this host${holder ? `, ${holder}` : ""}`);
    }
    if (verdict === "denied") problems.push(`${publishName}=${formatPublish(p)}: port ${hostSide(p)} is privileged and cannot be published by a rootless engine (use a host port of 1024 or more)`);
  }
  const mountName = c.sources[MOUNT_ENV] === "flag" ? "--mount" : MOUNT_ENV;
  for (const m of c.mounts) {
    if (!host.exists(m.source)) problems.push(`${mountName}=${formatMount(m)}: SRC ${m.source} does not exist on this host`);
  }
  return problems;
}
