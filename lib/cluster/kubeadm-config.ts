import { Document } from "yaml";
import type { NodeConfig } from "../config/resolve.ts";
import { POD_CIDR, SERVICE_CIDR } from "../net.ts";
import { KUBERNETES_VERSION } from "../versions.ts";

/** KUBEADM_API_VERSION is the kubeadm configuration format u7s writes. */
export const KUBEADM_API_VERSION = "kubeadm.k8s.io/v1beta4";

/** KubeadmArg is one v1beta4 extra argument: a list of {name, value} replaced v1beta3's map. */
export interface KubeadmArg {
  name: string;
  value: string;
}

const args = (entries: Record<string, string>): KubeadmArg[] =>
  Object.entries(entries).map(([name, value]) => ({ name, value }));

/** kubeadmDocuments are the objects of `kubeadm init --config`, in file order. */
export function kubeadmDocuments(c: NodeConfig): Record<string, unknown>[] {
  const etcdLocal = `https://127.0.0.1:${c.portEtcd}`;
  const etcdNode = `https://${c.nodeIp}:${c.portEtcd}`;
  return [
    {
      apiVersion: KUBEADM_API_VERSION,
      kind: "InitConfiguration",
      // The apiserver's --secure-port; the host publishes the same port number.
      localAPIEndpoint: { bindPort: c.portKubeApiserver },
    },
    {
      apiVersion: KUBEADM_API_VERSION,
      kind: "ClusterConfiguration",
      // Pinned to the image's kubeadm, so init does not ask dl.k8s.io for "stable" (works offline).
      kubernetesVersion: KUBERNETES_VERSION,
      // Workers reach the control plane by name: the join script maps NODE_NAME to its HOST_IP.
      controlPlaneEndpoint: `${c.nodeName}:${c.portKubeApiserver}`,
      networking: { serviceSubnet: SERVICE_CIDR, podSubnet: POD_CIDR },
      apiServer: {
        certSANs: ["localhost", "127.0.0.1", c.nodeName, c.hostIp],
        extraArgs: args({
          // Other hosts reach this apiserver at the host's address, not the node's private one.
          "advertise-address": c.hostIp,
          // kubeadm would assume etcd on 2379.
          "etcd-servers": etcdLocal,
          // Node IPs are private to each host; only ExternalIP (set from HOST_IP by
          // sync-external-ip) is reachable (default: Hostname,InternalDNS,InternalIP,ExternalDNS,ExternalIP).
          "kubelet-preferred-address-types": "ExternalIP",
        }),
      },
      controllerManager: {
        // Nodes start with the uninitialized taint until sync-external-ip sets their addresses.
        extraArgs: args({ "cloud-provider": "external" }),
      },
      etcd: {
        local: {
          extraArgs: args({
            "listen-client-urls": `${etcdLocal},${etcdNode}`,
            // kubeadm's default advertises port 2379 whatever PORT_ETCD is.
            "advertise-client-urls": etcdNode,
          }),
        },
      },
    },
    {
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      kind: "KubeletConfiguration",
      // The host's swap is visible and cannot be turned off without root.
      failSwapOn: false,
      port: c.portKubelet,
      featureGates: { KubeletInUserNamespace: true },
    },
    {
      apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
      kind: "KubeProxyConfiguration",
      mode: "iptables",
      // Zeros tell kube-proxy to leave these sysctls alone: it cannot write them in a user namespace.
      conntrack: {
        maxPerCore: 0, // net.netfilter.nf_conntrack_max
        tcpEstablishedTimeout: "0s", // net.netfilter.nf_conntrack_tcp_timeout_established
        tcpCloseWaitTimeout: "0s", // net.netfilter.nf_conntrack_tcp_timeout_close_wait
      },
    },
  ];
}

/** kubeadmConfig is the multi-document kubeadm v1beta4 YAML for `kubeadm init --config`. */
export function kubeadmConfig(config: NodeConfig): string {
  // YAML 1.1 rules for quoting: Kubernetes' YAML decoder reads "on", "yes" or 22:22 as non-strings.
  return kubeadmDocuments(config)
    .map((d) => `---\n${new Document(d, { version: "1.1" }).toString({ directives: false })}`)
    .join("");
}
