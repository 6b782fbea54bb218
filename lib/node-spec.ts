import type { NodeConfig } from "./config.ts";
import type { NodeSpec } from "./engine/engine.ts";
import { POD_CIDR, SERVICE_CIDR } from "./net.ts";
import { VERSION } from "./versions.ts";

/** LABEL_NODE marks every engine object u7s creates with the node it belongs to. */
export const LABEL_NODE = "io.u7s.node";
/** LABEL_SETTINGS records, on the container, the settings it was created with (JSON). */
export const LABEL_SETTINGS = "io.u7s.settings";
/** LABEL_VERSION records the u7s version that created the container. */
export const LABEL_VERSION = "io.u7s.version";

/** NodeNames are the engine object names of one node; all derive from NODE_NAME, which is unique per host. */
export interface NodeNames {
  container: string;
  network: string;
  volumes: { var: string; opt: string; etc: string };
}

/** nodeNames derives the container, network and volume names of a node. */
export function nodeNames(config: Pick<NodeConfig, "nodeName">): NodeNames {
  const n = config.nodeName;
  return { container: n, network: n, volumes: { var: `${n}-var`, opt: `${n}-opt`, etc: `${n}-etc` } };
}

/** NodeSpecInput is what the node spec needs beyond the settings. */
export interface NodeSpecInput {
  image: string;
  /** hostPaths: which of /boot and /lib/modules exist on this host (bind-mounted read-only only then). */
  hostPaths: { boot: boolean; libModules: boolean };
  /** bypass4netns: nerdctl's bypass4netnsd socket is present. */
  bypass4netns: boolean;
}

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
      same(config.portFlannel, "udp"),
    ],
    mounts: [
      // Only where the host has them: a bind of a missing path fails the whole `run`.
      ...(input.hostPaths.boot ? [{ source: "/boot", target: "/boot", readOnly: true }] : []),
      ...(input.hostPaths.libModules ? [{ source: "/lib/modules", target: "/lib/modules", readOnly: true }] : []),
      { source: names.volumes.var, target: "/var" },
      { source: names.volumes.opt, target: "/opt" },
      { source: names.volumes.etc, target: "/etc" },
    ],
    tmpfs: ["/run", "/tmp"],
    sysctls: { "net.ipv4.ip_forward": "1" },
    env: { KUBECONFIG: "/etc/kubernetes/admin.conf", HOST_IP: config.hostIp },
    labels: {
      [LABEL_NODE]: config.nodeName,
      [LABEL_VERSION]: VERSION,
      [LABEL_SETTINGS]: JSON.stringify(settingsRecord(config, input.image)),
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
