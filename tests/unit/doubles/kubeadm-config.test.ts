// The kubeadm double's config check (tests/doubles/kube-api/kubeadm-config.ts): u7s's own config
// passes it; what kubeadm 1.35 would refuse (or only warn about and ignore) is refused, in kubeadm's words.
import { describe, expect, test } from "bun:test";
import { resolveNodeConfig } from "../../../lib/config/resolve.ts";
import type { HostProbe } from "../../../lib/host/probe.ts";
import { settingsOnlyHost } from "../../fixtures/fakes.ts";
import { kubeadmConfig } from "../../../lib/cluster/kubeadm-config.ts";
import { KubeadmConfigError, kubeadmConfigLines, parseKubeadmConfig } from "../../doubles/kube-api/kubeadm-config.ts";

const fakeHost = (): HostProbe => settingsOnlyHost("login-1");

const u7sConfig = async (env: Record<string, string>) => kubeadmConfig(await resolveNodeConfig({ flags: {}, env, host: fakeHost() }));

/** refusal returns what the check throws for text (failing the test when it accepts it). */
function refusal(text: string): string {
  try {
    parseKubeadmConfig(text);
  } catch (err) {
    expect(err).toBeInstanceOf(KubeadmConfigError);
    return (err as Error).message;
  }
  throw new Error(`accepted:\n${text}`);
}

const doc = (apiVersion: string, kind: string, body = "") => `apiVersion: ${apiVersion}\nkind: ${kind}\n${body}`;
const V4 = "kubeadm.k8s.io/v1beta4";
const GVK = (kind: string, group = "kubeadm.k8s.io", version = "v1beta4") =>
  `error unmarshaling configuration schema.GroupVersionKind{Group:"${group}", Version:"${version}", Kind:"${kind}"}`;

describe("u7s's own kubeadm config passes", () => {
  test.each([
    ["upstream's defaults", {}],
    ["custom ports and names", { NODE_NAME: "u7s-custom", PORT_ETCD: "12379", PORT_KUBELET: "11250", PORT_FLANNEL: "18472", PORT_KUBE_APISERVER: "16443", HOST_IP: "198.51.100.23" }],
    ["tenant 3", { U7S_TENANT: "3" }],
    ["tenant 42 on another host", { U7S_TENANT: "42", HOSTNAME: "hpc-node-17", HOST_IP: "203.0.113.9" }],
  ])("%s", async (_name, env) => {
    const text = await u7sConfig(env);
    expect(parseKubeadmConfig(text).map((d) => d.kind)).toEqual(["InitConfiguration", "ClusterConfiguration", "KubeletConfiguration", "KubeProxyConfiguration"]);
    const lines = kubeadmConfigLines(text);
    expect(lines[0]).toMatch(/^bindPort \d+$/);
    expect(lines).toContain("podSubnet 10.244.0.0/16");
  });

  test("the reference pages' own examples pass: every field u7s could use is known", () => {
    const text = [
      doc(V4, "InitConfiguration", `bootstrapTokens:
- token: "9a08jv.c0izixklcxtmnze7"
  description: "kubeadm bootstrap token"
  ttl: "24h"
  usages: [authentication, signing]
  groups: [system:bootstrappers:kubeadm:default-node-token]
nodeRegistration:
  name: "ec2-10-100-0-1"
  criSocket: "unix:///var/run/containerd/containerd.sock"
  taints:
  - {key: "kubeadmNode", value: "someValue", effect: "NoSchedule"}
  kubeletExtraArgs:
  - {name: v, value: "5"}
  ignorePreflightErrors: [IsPrivilegedUser]
  imagePullPolicy: "IfNotPresent"
  imagePullSerial: true
localAPIEndpoint: {advertiseAddress: "10.100.0.1", bindPort: 6443}
certificateKey: "e6a2eb8581237ab72a4f494f30285ec12a9694d750b9785706a83bfcbbbd2204"
skipPhases: [preflight]
dryRun: false
patches: {directory: /etc/kubeadm/patches}
timeouts: {controlPlaneComponentHealthCheck: "60s", kubernetesAPICall: "40s"}
`),
      doc(V4, "ClusterConfiguration", `etcd:
  local:
    imageRepository: "registry.k8s.io"
    imageTag: "3.2.24"
    dataDir: "/var/lib/etcd"
    extraArgs: [{name: listen-client-urls, value: "http://10.100.0.1:2379"}]
    extraEnvs: [{name: SOME_VAR, value: SOME_VALUE}]
    serverCertSANs: ["ec2-10-100-0-1.compute-1.amazonaws.com"]
    peerCertSANs: ["10.100.0.1"]
networking: {serviceSubnet: "10.96.0.0/16", podSubnet: "10.244.0.0/24", dnsDomain: "cluster.local"}
kubernetesVersion: "v1.21.0"
controlPlaneEndpoint: "10.100.0.1:6443"
apiServer:
  extraArgs: [{name: authorization-mode, value: "Node,RBAC"}]
  extraEnvs: [{name: SOME_VAR, value: SOME_VALUE}]
  extraVolumes: [{name: "some-volume", hostPath: "/etc/some-path", mountPath: "/etc/some-pod-path", readOnly: false, pathType: File}]
  certSANs: ["10.100.1.1", "ec2-10-100-0-1.compute-1.amazonaws.com"]
controllerManager:
  extraArgs: [{name: node-cidr-mask-size, value: "20"}]
  extraVolumes: [{name: "some-volume", hostPath: "/etc/some-path", mountPath: "/etc/some-pod-path", readOnly: false, pathType: File}]
scheduler:
  extraArgs: [{name: address, value: "10.100.0.1"}]
certificatesDir: "/etc/kubernetes/pki"
imageRepository: "registry.k8s.io"
clusterName: "example-cluster"
encryptionAlgorithm: ECDSA-P256
certificateValidityPeriod: 8760h
caCertificateValidityPeriod: 87600h0m0s
featureGates: {ControlPlaneKubeletLocalMode: true}
dns: {disabled: true}
proxy: {disabled: true}
`),
      doc("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration", `failSwapOn: false
port: 10250
featureGates: {KubeletInUserNamespace: true}
cgroupDriver: systemd
evictionHard: {memory.available: 100Mi}
authentication: {anonymous: {enabled: false}}
logging: {format: json, verbosity: 4}
memoryThrottlingFactor: 0.9
registerWithTaints: [{key: a, effect: NoSchedule}]
`),
      doc("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration", `mode: iptables
clusterCIDR: 10.244.0.0/16
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s, tcpBeLiberal: true, udpTimeout: 30s, udpStreamTimeout: 300s}
iptables: {masqueradeBit: 14, masqueradeAll: false, localhostNodePorts: true, syncPeriod: 30s, minSyncPeriod: 1s}
nftables: {syncPeriod: 30s}
clientConnection: {kubeconfig: /var/lib/kube-proxy/kubeconfig.conf, qps: 5.5, burst: 10}
nodePortAddresses: [primary]
`),
      doc(V4, "JoinConfiguration", `discovery:
  bootstrapToken: {apiServerEndpoint: "some-address:6443", token: abcdef.0123456789abcdef, unsafeSkipCAVerification: true, caCertHashes: ["sha256:00"]}
  tlsBootstrapToken: abcdef.0123456789abcdef
nodeRegistration: {name: worker-1, kubeletExtraArgs: [{name: node-ip, value: 10.0.0.2}]}
controlPlane: {localAPIEndpoint: {bindPort: 6443}, certificateKey: abc}
`),
      doc(V4, "ResetConfiguration", "force: true\ncleanupTmpDir: true\nunmountFlags: [MNT_DETACH]\n"),
      doc(V4, "UpgradeConfiguration", "apply: {forceUpgrade: true, etcdUpgrade: false}\nplan: {kubernetesVersion: v1.35.0, etcdUpgrade: true}\ndiff: {contextLines: 3}\n"),
    ].join("---\n");
    expect(parseKubeadmConfig(text)).toHaveLength(7);
  });

  test("YAML 1.1 as kubeadm's go-yaml reads it: an unquoted no is a boolean", () => {
    expect(() => parseKubeadmConfig(doc("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration", "failSwapOn: no\n"))).not.toThrow();
    expect(refusal(doc(V4, "ClusterConfiguration", "clusterName: no\n"))).toContain("json: cannot unmarshal bool into Go struct field ClusterConfiguration.clusterName of type string");
  });
});

describe("a wrong apiVersion or kind is refused", () => {
  test.each([
    [doc("kubeadm.k8s.io/v1beta3", "ClusterConfiguration"), 'no kind "ClusterConfiguration" is registered for version "kubeadm.k8s.io/v1beta3" in scheme "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme/scheme.go:31"'],
    [doc("kubeadm.k8s.io/v1", "InitConfiguration"), 'no kind "InitConfiguration" is registered for version "kubeadm.k8s.io/v1"'],
    [doc("kubeadm.k8s.io/v1beta2", "InitConfiguration"), 'your configuration file uses an old API spec: "kubeadm.k8s.io/v1beta2" (kind: "InitConfiguration"). Please use kubeadm v1.22 instead'],
    [doc("kubelet.config.k8s.io/v1", "KubeletConfiguration"), 'unsupported apiVersion "kubelet.config.k8s.io/v1", you may have to do manual conversion to "kubelet.config.k8s.io/v1beta1" and run kubeadm again'],
    [doc("kubeproxy.config.k8s.io/v1beta1", "KubeProxyConfiguration"), 'unsupported apiVersion "kubeproxy.config.k8s.io/v1beta1", you may have to do manual conversion to "kubeproxy.config.k8s.io/v1alpha1"'],
    [doc(V4, "KubeletConfiguration"), "Ignored configuration document with GroupVersionKind kubeadm.k8s.io/v1beta4, Kind=KubeletConfiguration"],
    [doc(V4, "MasterConfiguration"), "Ignored configuration document with GroupVersionKind kubeadm.k8s.io/v1beta4, Kind=MasterConfiguration"],
    [doc("example.com/v1", "Thing"), "Ignored configuration document with GroupVersionKind example.com/v1, Kind=Thing"],
    ["kind: InitConfiguration\n", "invalid configuration for GroupVersionKind {Group: Version: Kind:InitConfiguration}: kind and apiVersion is mandatory information that must be specified"],
    [`apiVersion: ${V4}\n`, "kind and apiVersion is mandatory information that must be specified"],
  ])("%s", (text, message) => {
    expect(refusal(text)).toContain(message);
  });

  test("one bad document among good ones is enough", async () => {
    const text = (await u7sConfig({})).replace("kubeproxy.config.k8s.io/v1alpha1", "kubeproxy.config.k8s.io/v1alpha2");
    expect(refusal(text)).toContain('unsupported apiVersion "kubeproxy.config.k8s.io/v1alpha2"');
  });
});

describe("an unknown field is refused with kubeadm's strict decoding error", () => {
  test.each([
    ["InitConfiguration", "localAPIEndpoint.bindport", "localAPIEndpoint:\n  bindport: 6443\n"],
    ["InitConfiguration", "nodeRegistration.nodeName", "nodeRegistration:\n  nodeName: x\n"],
    ["InitConfiguration", "metadata", "metadata: {name: x}\n"],
    ["ClusterConfiguration", "apiServer.certSans", "apiServer:\n  certSans: [a]\n"],
    ["ClusterConfiguration", "controllerManager.extraArgs[0].flag", "controllerManager:\n  extraArgs:\n  - {name: a, value: b, flag: c}\n"],
    ["ClusterConfiguration", "scheduler.certSANs", "scheduler:\n  certSANs: [a]\n"],
    ["ClusterConfiguration", "etcd.localEtcd", "etcd:\n  localEtcd: {}\n"],
    ["ClusterConfiguration", "etcd.local.dataDirectory", "etcd:\n  local:\n    dataDirectory: /x\n"],
    ["ClusterConfiguration", "networking.podCIDR", "networking:\n  podCIDR: 10.0.0.0/8\n"],
    ["JoinConfiguration", "discovery.bootstrapToken.caCertHash", "discovery:\n  bootstrapToken:\n    caCertHash: x\n"],
    ["JoinConfiguration", "nodeRegistration.taints[0].efect", "nodeRegistration:\n  taints:\n  - {key: a, efect: NoSchedule}\n"],
  ])("%s: %s", (kind, path, body) => {
    expect(refusal(doc(V4, kind, body))).toStartWith(`${GVK(kind)}: strict decoding error: unknown field "${path}"\n`);
  });

  test.each([
    ["kubelet.config.k8s.io", "v1beta1", "KubeletConfiguration", "failSwapOff", "failSwapOff: true\n"],
    ["kubelet.config.k8s.io", "v1beta1", "KubeletConfiguration", "crashLoopBackOff.maxRestartPeriod", "crashLoopBackOff: {maxRestartPeriod: 1s}\n"],
    ["kubeproxy.config.k8s.io", "v1alpha1", "KubeProxyConfiguration", "conntrack.udpIdleTimeout", "conntrack:\n  udpIdleTimeout: 1s\n"],
    ["kubeproxy.config.k8s.io", "v1alpha1", "KubeProxyConfiguration", "iptables.masqueradeALL", "iptables: {masqueradeALL: true}\n"],
  ])("%s/%s %s: %s", (group, version, kind, path, body) => {
    expect(refusal(doc(`${group}/${version}`, kind, body))).toStartWith(`${GVK(kind, group, version)}: strict decoding error: unknown field "${path}"\n`);
  });

  test("every unknown field of a document is named, and the refusal says kubeadm init only warns", () => {
    const m = refusal(doc(V4, "ClusterConfiguration", "foo: 1\napiServer: {bar: 2}\n"));
    expect(m).toContain('strict decoding error: unknown field "foo", unknown field "apiServer.bar"');
    expect(m).toContain("kubeadm init ignores an unknown field with this warning, `kubeadm config validate` refuses it");
  });

  test("u7s's config with one field renamed is refused", async () => {
    const text = (await u7sConfig({})).replace("failSwapOn:", "failswapon:");
    expect(refusal(text)).toContain('strict decoding error: unknown field "failswapon"');
  });
});

describe("a value of the wrong type is refused as json decoding refuses it", () => {
  test.each([
    ["apiServer", "APIServer"],
    ["controllerManager", "ControlPlaneComponent"],
    ["scheduler", "ControlPlaneComponent"],
  ])("%s.extraArgs as a map (v1beta3's form)", (component, goType) => {
    const message = `json: cannot unmarshal object into Go struct field ${goType}.${component}.extraArgs of type []v1beta4.Arg`;
    expect(refusal(doc(V4, "ClusterConfiguration", `${component}:\n  extraArgs:\n    cloud-provider: external\n`))).toBe(`${GVK("ClusterConfiguration")}: ${message}\n${message}`);
  });

  test("etcd.local.extraArgs and nodeRegistration.kubeletExtraArgs as maps", () => {
    expect(refusal(doc(V4, "ClusterConfiguration", "etcd:\n  local:\n    extraArgs: {listen-client-urls: x}\n"))).toContain(
      "json: cannot unmarshal object into Go struct field LocalEtcd.etcd.local.extraArgs of type []v1beta4.Arg",
    );
    expect(refusal(doc(V4, "InitConfiguration", "nodeRegistration:\n  kubeletExtraArgs: {node-ip: 10.0.0.1}\n"))).toContain(
      "json: cannot unmarshal object into Go struct field NodeRegistrationOptions.nodeRegistration.kubeletExtraArgs of type []v1beta4.Arg",
    );
  });

  test("u7s's config with its extraArgs written as v1beta3's map is refused", async () => {
    const text = (await u7sConfig({})).replace(/controllerManager:\n {2}extraArgs:\n {4}- name: cloud-provider\n {6}value: external\n/, "controllerManager:\n  extraArgs:\n    cloud-provider: external\n");
    expect(text).toContain("    cloud-provider: external\n");
    expect(refusal(text)).toContain("Go struct field ControlPlaneComponent.controllerManager.extraArgs of type []v1beta4.Arg");
  });

  test.each([
    ["InitConfiguration", 'localAPIEndpoint: {bindPort: "6443"}', "json: cannot unmarshal string into Go struct field APIEndpoint.localAPIEndpoint.bindPort of type int32"],
    ["InitConfiguration", "localAPIEndpoint: {bindPort: 6443.5}", "json: cannot unmarshal number 6443.5 into Go struct field APIEndpoint.localAPIEndpoint.bindPort of type int32"],
    ["InitConfiguration", "localAPIEndpoint: [6443]", "json: cannot unmarshal array into Go struct field InitConfiguration.localAPIEndpoint of type v1beta4.APIEndpoint"],
    ["ClusterConfiguration", "apiServer: {certSANs: localhost}", "json: cannot unmarshal string into Go struct field APIServer.apiServer.certSANs of type []string"],
    ["ClusterConfiguration", "featureGates: {A: 1}", "json: cannot unmarshal number 1 into Go struct field ClusterConfiguration.featureGates.A of type bool"],
    ["ClusterConfiguration", "certificateValidityPeriod: 1y", 'time: invalid duration "1y"'],
  ])("%s %s", (kind, body, message) => {
    expect(refusal(doc(V4, kind, `${body}\n`))).toContain(message);
  });

  test("kubelet and kube-proxy types name their own package", () => {
    expect(refusal(doc("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration", "port: '10250'\n"))).toContain("Go struct field KubeletConfiguration.port of type int32");
    expect(refusal(doc("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration", "conntrack: 0\n"))).toContain(
      "json: cannot unmarshal number 0 into Go struct field KubeProxyConfiguration.conntrack of type v1alpha1.KubeProxyConntrackConfiguration",
    );
  });
});

test("kubeadmConfigLines reads u7s's init config and refuses a bad one", async () => {
  const text = await u7sConfig({ NODE_NAME: "u7s-x", PORT_KUBE_APISERVER: "16443", HOST_IP: "198.51.100.23" });
  expect(kubeadmConfigLines(text)).toEqual([
    "bindPort 16443",
    "controlPlaneEndpoint u7s-x:16443",
    "podSubnet 10.244.0.0/16",
    "certSAN localhost",
    "certSAN 127.0.0.1",
    "certSAN u7s-x",
    "certSAN 198.51.100.23",
  ]);
  expect(() => kubeadmConfigLines(text.replace("certSANs:", "certSans:"))).toThrow(KubeadmConfigError);
});
