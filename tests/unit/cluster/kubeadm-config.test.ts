import { describe, expect, test } from "bun:test";
import { parseAllDocuments } from "yaml";
import { resolveNodeConfig, type NodeConfig } from "../../../lib/config/resolve.ts";
import type { HostProbe } from "../../../lib/host/probe.ts";
import { settingsOnlyHost } from "../../fixtures/fakes.ts";
import { kubeadmConfig } from "../../../lib/cluster/kubeadm-config.ts";
import { wrongRows } from "../../fixtures/table.ts";

// Every setting differs from upstream's default, so a hard-coded default cannot pass.
const ENV = {
  CONTAINER_ENGINE: "podman",
  HOSTNAME: "hpc-login-3",
  HOST_IP: "198.51.100.23",
  NODE_NAME: "u7s-custom",
  NODE_SUBNET: "10.100.77.0/24",
  NODE_IP: "10.100.77.42",
  PORT_ETCD: "12379",
  PORT_KUBELET: "11250",
  PORT_FLANNEL: "18472",
  PORT_KUBE_APISERVER: "16443",
};

const fakeHost = (): HostProbe => settingsOnlyHost("not-this-host");

const config: NodeConfig = await resolveNodeConfig({ flags: {}, env: ENV, host: fakeHost() });
const text = kubeadmConfig(config);
const docs = parseAllDocuments(text);
const objects = (Array.isArray(docs) ? docs : []).map((d) => d.toJS() as Record<string, unknown>);

function byKind(kind: string): Record<string, unknown> {
  const found = objects.filter((o) => o.kind === kind);
  expect(found).toHaveLength(1);
  return found[0]!;
}

function at(obj: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], obj);
}

/** extraArg reads one v1beta4 extra argument ({name, value} list) and checks it is given once. */
function extraArg(kind: string, path: string, name: string): string | undefined {
  const list = at(byKind(kind), path) as { name: string; value: string }[];
  expect(Array.isArray(list)).toBe(true);
  const hits = list.filter((a) => a.name === name);
  expect(hits.length).toBeLessThanOrEqual(1);
  return hits[0]?.value;
}

describe("kubeadmConfig", () => {
  test("the config resolved with the non-default settings", () => {
    expect(config.nodeIp).toBe("10.100.77.42");
    expect(config.portEtcd).toBe(12379);
  });

  test("is valid YAML: four documents, no errors, in init order", () => {
    expect(Array.isArray(docs)).toBe(true);
    for (const d of docs as ReturnType<typeof parseAllDocuments> & unknown[]) expect(d.errors).toEqual([]);
    expect(objects.map((o) => o.kind)).toEqual([
      "InitConfiguration",
      "ClusterConfiguration",
      "KubeletConfiguration",
      "KubeProxyConfiguration",
    ]);
  });

  test("each document has upstream's API version and fields, with these settings", async () => {
    const rows = [
      ["InitConfiguration", "apiVersion", "kubeadm.k8s.io/v1beta4"],
      ["ClusterConfiguration", "apiVersion", "kubeadm.k8s.io/v1beta4"],
      ["KubeletConfiguration", "apiVersion", "kubelet.config.k8s.io/v1beta1"],
      ["KubeProxyConfiguration", "apiVersion", "kubeproxy.config.k8s.io/v1alpha1"],
      // apiserver bind (= secure) port
      ["InitConfiguration", "localAPIEndpoint.bindPort", 16443],
      ["ClusterConfiguration", "controlPlaneEndpoint", "u7s-custom:16443"],
      ["ClusterConfiguration", "apiServer.certSANs", ["localhost", "127.0.0.1", "u7s-custom", "198.51.100.23"]],
      ["ClusterConfiguration", "networking.serviceSubnet", "10.96.0.0/16"],
      ["ClusterConfiguration", "networking.podSubnet", "10.244.0.0/16"],
      ["KubeletConfiguration", "failSwapOn", false],
      ["KubeletConfiguration", "port", 11250],
      ["KubeletConfiguration", "featureGates.KubeletInUserNamespace", true],
      ["KubeProxyConfiguration", "mode", "iptables"],
      ["KubeProxyConfiguration", "conntrack.maxPerCore", 0],
      ["KubeProxyConfiguration", "conntrack.tcpEstablishedTimeout", "0s"],
      ["KubeProxyConfiguration", "conntrack.tcpCloseWaitTimeout", "0s"],
    ] as const;
    expect(await wrongRows(rows.map(([kind, path, want]) => [[kind, path], want] as const), ([kind, path]) => at(byKind(kind), path))).toEqual([]);
  });

  test("the control plane's extra arguments point at HOST_IP, NODE_IP and PORT_ETCD", async () => {
    const rows = [
      ["apiServer.extraArgs", "advertise-address", "198.51.100.23"],
      ["apiServer.extraArgs", "etcd-servers", "https://127.0.0.1:12379"],
      ["apiServer.extraArgs", "kubelet-preferred-address-types", "ExternalIP"],
      ["controllerManager.extraArgs", "cloud-provider", "external"],
      ["etcd.local.extraArgs", "advertise-client-urls", "https://10.100.77.42:12379"],
    ] as const;
    expect(await wrongRows(rows.map(([path, name, want]) => [[path, name], want] as const), ([path, name]) => extraArg("ClusterConfiguration", path, name))).toEqual([]);
  });

  test("etcd listens on 127.0.0.1 and NODE_IP at PORT_ETCD", () => {
    const urls = extraArg("ClusterConfiguration", "etcd.local.extraArgs", "listen-client-urls")?.split(",");
    expect(urls?.sort()).toEqual(["https://10.100.77.42:12379", "https://127.0.0.1:12379"]);
  });

  test("extraArgs are v1beta4 lists of {name, value} strings", () => {
    for (const path of ["apiServer.extraArgs", "controllerManager.extraArgs", "etcd.local.extraArgs"]) {
      const list = at(byKind("ClusterConfiguration"), path) as unknown[];
      for (const a of list) {
        expect(Object.keys(a as object).sort()).toEqual(["name", "value"]);
        expect(typeof (a as { value: unknown }).value).toBe("string");
      }
    }
  });

  test("no JoinConfiguration (upstream has none: workers join with the printed join command)", () => {
    expect(objects.some((o) => o.kind === "JoinConfiguration")).toBe(false);
  });

  test("a node name YAML 1.1 reads as a boolean (kubeadm's decoder is YAML 1.1) stays a string", async () => {
    const on = await resolveNodeConfig({ flags: {}, env: { ...ENV, NODE_NAME: "on" }, host: fakeHost() });
    const objs = parseAllDocuments(kubeadmConfig(on), { version: "1.1" }) as unknown as { toJS(): Record<string, unknown> }[];
    const cluster = objs.map((d) => d.toJS()).find((o) => o.kind === "ClusterConfiguration");
    expect(at(cluster, "apiServer.certSANs")).toEqual(["localhost", "127.0.0.1", "on", "198.51.100.23"]);
    expect(at(cluster, "controlPlaneEndpoint")).toBe("on:16443");
  });

  test("default ports give upstream's values", async () => {
    const defaults = await resolveNodeConfig({ flags: {}, env: { CONTAINER_ENGINE: "podman", HOSTNAME: "h", HOST_IP: "192.0.2.1" }, host: fakeHost() });
    const objs = parseAllDocuments(kubeadmConfig(defaults)) as unknown as { toJS(): Record<string, unknown> }[];
    const init = objs.map((d) => d.toJS()).find((o) => o.kind === "InitConfiguration");
    expect(at(init, "localAPIEndpoint.bindPort")).toBe(6443);
  });
});
