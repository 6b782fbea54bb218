import type { EngineName } from "../engine/types.ts";

/** Source says where a setting came from. */
export type Source = "flag" | "env" | "default";

/** SettingFlags are the command-line flags that override settings (undefined = not given). */
export interface SettingFlags {
  containerEngine?: string;
  hostname?: string;
  hostIp?: string;
  hostIpInterface?: string;
  nodeName?: string;
  nodeSubnet?: string;
  nodeIp?: string;
  portEtcd?: string;
  portKubelet?: string;
  portFlannel?: string;
  portKubeApiserver?: string;
  tenant?: string;
  vxlanRelay?: string;
  nodeMtu?: string;
}

/** SETTINGS maps each setting flag to its upstream environment variable name and help text. */
export const SETTINGS = {
  containerEngine: { env: "CONTAINER_ENGINE", flag: "container-engine", help: "engine binary: docker, podman or nerdctl (or a path to one)" },
  hostname: { env: "HOSTNAME", flag: "hostname", help: "host name the node name and subnet derive from" },
  hostIp: { env: "HOST_IP", flag: "host-ip", help: "IPv4 address other hosts reach this one at" },
  hostIpInterface: { env: "HOST_IP_INTERFACE", flag: "host-ip-interface", help: "take HOST_IP from this network interface" },
  nodeName: { env: "NODE_NAME", flag: "node-name", help: "Kubernetes node name and container hostname" },
  nodeSubnet: { env: "NODE_SUBNET", flag: "node-subnet", help: "the node network, an IPv4 x.y.z.0/24" },
  nodeIp: { env: "NODE_IP", flag: "node-ip", help: "the node container's address in NODE_SUBNET" },
  portEtcd: { env: "PORT_ETCD", flag: "port-etcd", help: "etcd port (tcp)" },
  portKubelet: { env: "PORT_KUBELET", flag: "port-kubelet", help: "kubelet port (tcp)" },
  portFlannel: { env: "PORT_FLANNEL", flag: "port-flannel", help: "Flannel VXLAN port (udp)" },
  portKubeApiserver: { env: "PORT_KUBE_APISERVER", flag: "port-kube-apiserver", help: "kube-apiserver port (tcp)" },
  tenant: { env: "U7S_TENANT", flag: "tenant", help: "tenant number 0-99: moves ports, names and subnet so many nodes share a host (0 = upstream's)" },
  vxlanRelay: { env: "U7S_VXLAN_RELAY", flag: "vxlan-relay", help: "on (default): Flannel's VXLAN to other hosts goes through host sockets (u7s's relay); off: through the engine's published PORT_FLANNEL" },
  nodeMtu: { env: "NODE_MTU", flag: "node-mtu", help: "the node network's MTU, 1280-65520 (default: the engine's, 1500); every host of a cluster needs the same" },
} as const satisfies Record<keyof SettingFlags, { env: string; flag: string; help: string }>;

/** DEFAULT_PORTS are upstream's port defaults. */
export const DEFAULT_PORTS = { portEtcd: 2379, portKubelet: 10250, portFlannel: 8472, portKubeApiserver: 6443 } as const;

/** ENGINE_PROBES is upstream's detection order: the rootless launcher that marks each engine. */
export const ENGINE_PROBES: readonly { engine: EngineName; marker: string }[] = [
  { engine: "docker", marker: "dockerd-rootless.sh" },
  { engine: "nerdctl", marker: "containerd-rootless.sh" },
  { engine: "podman", marker: "podman" },
];
