import type { NodeConfig } from "../config/resolve.ts";
import type { ContainerState, NodeSpec } from "../engine/engine.ts";
import { POD_CIDR, SERVICE_CIDR } from "../net.ts";
import { MOUNT_ENV, mountRecord, parseMountRecord, parsePublishRecord, PUBLISH_ENV, publishRecord } from "../config/publish.ts";
import { VERSION } from "../versions.ts";
import { NODE_RELAY_DIR, NODE_SOCKET_DIR } from "../relay/host.ts";
import { LABEL_NODE, LABEL_SETTINGS, LABEL_TENANT, LABEL_VERSION, nodeNames } from "./names.ts";

/** NodeSpecInput is what the node spec needs beyond the settings. */
export interface NodeSpecInput {
  image: string;
  /** hostPaths: which of /boot and /lib/modules exist on this host (bind-mounted read-only only then). */
  hostPaths: { boot: boolean; libModules: boolean };
  /** bypass4netns: nerdctl's bypass4netnsd socket is present. */
  bypass4netns: boolean;
  /**
   * relay: the host directories of the VXLAN relay (lib/relay/host.ts) when U7S_VXLAN_RELAY is on: the
   * u7s binary and unit (mounted read-only at NODE_RELAY_DIR) and the unix socket's (at NODE_SOCKET_DIR).
   */
  relay?: { binDir: string; socketDir: string };
}

/** RELAY_ENV is the setting that turns the VXLAN relay on or off (recorded on the node when on). */
export const RELAY_ENV = "U7S_VXLAN_RELAY";

/** settingsRecord is what a container is created from, compared on the next `up` to say what changed. */
export function settingsRecord(config: NodeConfig, image: string): Record<string, string> {
  return {
    image,
    HOST_IP: config.hostIp,
    NODE_NAME: config.nodeName,
    NODE_SUBNET: config.nodeSubnet,
    NODE_IP: config.nodeIp,
    PORT_ETCD: String(config.portEtcd),
    PORT_KUBELET: String(config.portKubelet),
    PORT_FLANNEL: String(config.portFlannel),
    PORT_KUBE_APISERVER: String(config.portKubeApiserver),
    // only when on: a node made before the relay existed records nothing and publishes PORT_FLANNEL
    ...(config.vxlanRelay ? { [RELAY_ENV]: "on" } : {}),
    // only when set (NODE_MTU): a node on the engine's default MTU records nothing, as before the setting existed
    ...(config.nodeMtu !== undefined ? { NODE_MTU: String(config.nodeMtu) } : {}),
    // only when set: a node made before --publish/--mount existed records neither, and is unchanged
    ...(config.publish.length > 0 ? { [PUBLISH_ENV]: publishRecord(config.publish) } : {}),
    ...(config.mounts.length > 0 ? { [MOUNT_ENV]: mountRecord(config.mounts) } : {}),
  };
}

/** nodeSpec is the node container as upstream's compose file describes it, from the resolved settings. */
export function nodeSpec(config: NodeConfig, input: NodeSpecInput): NodeSpec {
  const names = nodeNames(config);
  const same = (port: number, protocol: "tcp" | "udp" = "tcp") => ({ host: port, container: port, protocol });
  return {
    name: names.container,
    hostname: config.nodeName,
    image: input.image,
    network: names.network,
    ip: config.nodeIp,
    ports: [
      same(config.portEtcd),
      same(config.portKubeApiserver),
      same(config.portKubelet),
      // with the relay, the host side binds PORT_FLANNEL itself (lib/relay/host.ts): the engine must not
      ...(config.vxlanRelay ? [] : [same(config.portFlannel, "udp")]),
      // --publish: [HOST_IP:]HOST_PORT:NODE_PORT/PROTO
      ...config.publish.map((p) => ({ ...(p.hostIp !== undefined ? { hostIp: p.hostIp } : {}), host: p.hostPort, container: p.nodePort, protocol: p.protocol })),
    ],
    mounts: [
      // Only where the host has them: a bind of a missing path fails the whole `run`.
      ...(input.hostPaths.boot ? [{ source: "/boot", target: "/boot", readOnly: true }] : []),
      ...(input.hostPaths.libModules ? [{ source: "/lib/modules", target: "/lib/modules", readOnly: true }] : []),
      { source: names.volumes.var, target: "/var" },
      { source: names.volumes.opt, target: "/opt" },
      { source: names.volumes.etc, target: "/etc" },
      ...(config.vxlanRelay && input.relay
        ? [
            { source: input.relay.binDir, target: NODE_RELAY_DIR, readOnly: true },
            { source: input.relay.socketDir, target: NODE_SOCKET_DIR },
          ]
        : []),
      // --mount: after the volumes, so a path under /var, /opt or /etc shows on top of the volume
      ...config.mounts.map((m) => ({ source: m.source, target: m.target, ...(m.readOnly ? { readOnly: true } : {}) })),
    ],
    tmpfs: ["/run", "/tmp"],
    sysctls: { "net.ipv4.ip_forward": "1" },
    env: { KUBECONFIG: "/etc/kubernetes/admin.conf", HOST_IP: config.hostIp },
    labels: {
      [LABEL_NODE]: config.nodeName,
      [LABEL_VERSION]: VERSION,
      [LABEL_SETTINGS]: JSON.stringify(settingsRecord(config, input.image)),
      // tenant 0 keeps upstream's (and earlier u7s's) exact container: a missing label means tenant 0
      ...(config.tenant > 0 ? { [LABEL_TENANT]: String(config.tenant) } : {}),
    },
    annotations: input.bypass4netns
      ? {
          "nerdctl/bypass4netns": "true",
          "nerdctl/bypass4netns-ignore-bind": "true",
          "nerdctl/bypass4netns-ignore-subnets": JSON.stringify([SERVICE_CIDR, POD_CIDR, config.nodeSubnet]),
        }
      : {},
  };
}

/** settingsDiff says what differs between the settings a container was created with and the wanted ones. */
export function settingsDiff(created: Record<string, string>, wanted: Record<string, string>, ignore: readonly string[] = []): string[] {
  const keys = [...new Set([...Object.keys(created), ...Object.keys(wanted)])].filter((k) => !ignore.includes(k));
  return keys
    .filter((k) => created[k] !== wanted[k])
    .map((k) => `${k}: ${created[k] ?? "(unset)"} -> ${wanted[k] ?? "(unset)"}`);
}

/** createdSettings reads the settings label u7s put on a container, undefined when it has none. */
export function createdSettings(state: ContainerState): Record<string, string> | undefined {
  const raw = state.labels[LABEL_SETTINGS];
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as Record<string, string>;
  } catch {
    return undefined;
  }
}

/**
 * configFromSettings is the NodeConfig a container was created with, from its settings record
 * (to restore it); undefined when the record lacks a value or holds a malformed one.
 */
export function configFromSettings(config: NodeConfig, record: Record<string, string>): NodeConfig | undefined {
  const port = (k: string) => (/^[0-9]{1,5}$/.test(record[k] ?? "") ? Number(record[k]) : undefined);
  const ports = {
    portEtcd: port("PORT_ETCD"),
    portKubelet: port("PORT_KUBELET"),
    portFlannel: port("PORT_FLANNEL"),
    portKubeApiserver: port("PORT_KUBE_APISERVER"),
  };
  const { HOST_IP: hostIp, NODE_SUBNET: nodeSubnet, NODE_IP: nodeIp, NODE_NAME: nodeName } = record;
  if (hostIp === undefined || nodeSubnet === undefined || nodeIp === undefined || nodeName !== config.nodeName) return undefined;
  if (Object.values(ports).some((p) => p === undefined)) return undefined;
  const publish = parsePublishRecord(record[PUBLISH_ENV] ?? "");
  const mounts = parseMountRecord(record[MOUNT_ENV] ?? "");
  if (publish === undefined || mounts === undefined) return undefined;
  const { nodeMtu: _current, ...rest } = config;
  const mtu = /^[0-9]{4,5}$/.test(record.NODE_MTU ?? "") ? { nodeMtu: Number(record.NODE_MTU) } : {};
  return Object.freeze({ ...rest, hostIp, nodeSubnet, nodeIp, ...(ports as Record<keyof typeof ports, number>), vxlanRelay: record[RELAY_ENV] === "on", ...mtu, publish, mounts });
}
