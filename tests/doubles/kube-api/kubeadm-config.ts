// The kubeadm double's reading of `kubeadm init --config FILE`: every YAML document is checked
// against the types kubeadm 1.35 decodes it into, with kubeadm's own wording, before the double
// acts on four of its fields (kubeadmConfigLines).
//
// Field lists, from the published API references:
//   kubeadm.k8s.io/v1beta4          https://kubernetes.io/docs/reference/config-api/kubeadm-config.v1beta4/
//   kubelet.config.k8s.io/v1beta1   https://kubernetes.io/docs/reference/config-api/kubelet-config.v1beta1/
//   kubeproxy.config.k8s.io/v1alpha1 https://kubernetes.io/docs/reference/config-api/kube-proxy-config.v1alpha1/
//     (kube-proxy's nftables, logging and the conntrack udp/tcpBeLiberal fields as in its v1alpha1
//     types.go, kubernetes/kubernetes staging/src/k8s.io/kube-proxy/config/v1alpha1)
//
// How kubeadm 1.35 treats a document (cmd/kubeadm/app/util/config: documentMapToInitConfiguration):
//   - a kind it knows with an apiVersion it does not: fatal, `no kind "X" is registered for version ...`
//     (kubeadm's older versions: "your configuration file uses an old API spec"; the kubelet and
//     kube-proxy groups: "unsupported apiVersion ..., you may have to do manual conversion");
//   - a value of the wrong JSON type (v1beta4's extraArgs given as a map, as v1beta3 had it): fatal,
//     `json: cannot unmarshal object into Go struct field APIServer.apiServer.extraArgs of type []v1beta4.Arg`;
//   - an unknown field, or a document of an unknown kind: kubeadm init WARNS (`error unmarshaling
//     configuration ...: strict decoding error: unknown field "..."`, "Ignored configuration
//     document") and goes on without it; `kubeadm config validate` refuses both. The double refuses
//     them as `config validate` does: a field real kubeadm ignores is a bug in what u7s writes.
import { parseAllDocuments } from "yaml";

/** Field is the type of one field as kubeadm's Go types declare it (go: the type's name in json errors). */
type Field =
  | { t: "string" | "bool" | "int" | "float"; go: string }
  | { t: "duration" } // metav1.Duration: a Go duration string
  | { t: "list"; of: Field; go: string }
  | { t: "map"; of: Field; go: string }
  | { t: "struct"; s: Struct }
  | { t: "any" }; // a type this double does not model field by field

/** Struct is a Go struct: its name (as encoding/json names it in errors) and its JSON fields. */
interface Struct {
  go: string;
  fields: Record<string, Field>;
}

const str: Field = { t: "string", go: "string" };
const bool: Field = { t: "bool", go: "bool" };
const int32: Field = { t: "int", go: "int32" };
const int64: Field = { t: "int", go: "int64" };
const float64: Field = { t: "float", go: "float64" };
const duration: Field = { t: "duration" };
const any: Field = { t: "any" };
const strings: Field = { t: "list", of: str, go: "[]string" };
const stringMap: Field = { t: "map", of: str, go: "map[string]string" };
const boolMap: Field = { t: "map", of: bool, go: "map[string]bool" };
const struct = (go: string, fields: Record<string, Field>): Field => ({ t: "struct", s: { go, fields } });
const listOf = (s: Field, go: string): Field => ({ t: "list", of: s, go });

// ------------------------------------------------------------------ kubeadm.k8s.io/v1beta4
const arg = struct("Arg", { name: str, value: str });
const args = listOf(arg, "[]v1beta4.Arg"); // v1beta4 replaced v1beta3's map[string]string
const envVars = listOf(struct("EnvVar", { name: str, value: str, valueFrom: any }), "[]v1beta4.EnvVar");
const hostPathMounts = listOf(struct("HostPathMount", { name: str, hostPath: str, mountPath: str, readOnly: bool, pathType: str }), "[]v1beta4.HostPathMount");
const component = { extraArgs: args, extraVolumes: hostPathMounts, extraEnvs: envVars };
const imageMeta = { imageRepository: str, imageTag: str };
const apiEndpoint = (): Field => struct("APIEndpoint", { advertiseAddress: str, bindPort: int32 });
const taint = struct("Taint", { key: str, value: str, effect: str, timeAdded: str });
const nodeRegistration = struct("NodeRegistrationOptions", {
  name: str,
  criSocket: str,
  taints: listOf(taint, "[]v1.Taint"),
  kubeletExtraArgs: args,
  ignorePreflightErrors: strings,
  imagePullPolicy: str,
  imagePullSerial: bool,
});
const patches = struct("Patches", { directory: str });
const timeouts = struct("Timeouts", {
  controlPlaneComponentHealthCheck: duration,
  kubeletHealthCheck: duration,
  kubernetesAPICall: duration,
  etcdAPICall: duration,
  tlsBootstrap: duration,
  discovery: duration,
  upgradeManifests: duration,
});
const bootstrapToken = struct("BootstrapToken", { token: str, description: str, ttl: duration, expires: str, usages: strings, groups: strings });

const initConfiguration: Struct = {
  go: "InitConfiguration",
  fields: {
    bootstrapTokens: listOf(bootstrapToken, "[]v1.BootstrapToken"),
    dryRun: bool,
    nodeRegistration,
    localAPIEndpoint: apiEndpoint(),
    certificateKey: str,
    skipPhases: strings,
    patches,
    timeouts,
  },
};

const clusterConfiguration: Struct = {
  go: "ClusterConfiguration",
  fields: {
    etcd: struct("Etcd", {
      local: struct("LocalEtcd", { ...imageMeta, dataDir: str, extraArgs: args, extraEnvs: envVars, serverCertSANs: strings, peerCertSANs: strings }),
      // httpEndpoints: added in v1.35 (the page's list of changes)
      external: struct("ExternalEtcd", { endpoints: strings, httpEndpoints: strings, caFile: str, certFile: str, keyFile: str }),
    }),
    networking: struct("Networking", { serviceSubnet: str, podSubnet: str, dnsDomain: str }),
    kubernetesVersion: str,
    controlPlaneEndpoint: str,
    apiServer: struct("APIServer", { ...component, certSANs: strings }),
    controllerManager: struct("ControlPlaneComponent", component),
    scheduler: struct("ControlPlaneComponent", component),
    dns: struct("DNS", { ...imageMeta, disabled: bool }),
    proxy: struct("Proxy", { disabled: bool }),
    certificatesDir: str,
    imageRepository: str,
    featureGates: boolMap,
    clusterName: str,
    encryptionAlgorithm: str,
    certificateValidityPeriod: duration,
    caCertificateValidityPeriod: duration,
  },
};

const joinConfiguration: Struct = {
  go: "JoinConfiguration",
  fields: {
    dryRun: bool,
    nodeRegistration,
    caCertPath: str,
    discovery: struct("Discovery", {
      bootstrapToken: struct("BootstrapTokenDiscovery", { token: str, apiServerEndpoint: str, caCertHashes: strings, unsafeSkipCAVerification: bool }),
      file: struct("FileDiscovery", { kubeConfigPath: str }),
      tlsBootstrapToken: str,
    }),
    controlPlane: struct("JoinControlPlane", { localAPIEndpoint: apiEndpoint(), certificateKey: str }),
    skipPhases: strings,
    patches,
    timeouts,
  },
};

const resetConfiguration: Struct = {
  go: "ResetConfiguration",
  fields: {
    cleanupTmpDir: bool,
    certificatesDir: str,
    criSocket: str,
    dryRun: bool,
    force: bool,
    ignorePreflightErrors: strings,
    skipPhases: strings,
    unmountFlags: strings,
    timeouts,
  },
};

const upgradeCommon = { dryRun: bool, ignorePreflightErrors: strings, imagePullPolicy: str, imagePullSerial: bool };
const upgradeConfiguration: Struct = {
  go: "UpgradeConfiguration",
  fields: {
    apply: struct("UpgradeApplyConfiguration", {
      ...upgradeCommon,
      kubernetesVersion: str,
      allowExperimentalUpgrades: bool,
      allowRCUpgrades: bool,
      certificateRenewal: bool,
      etcdUpgrade: bool,
      forceUpgrade: bool,
      patches,
      printConfig: bool,
      skipPhases: strings,
    }),
    diff: struct("UpgradeDiffConfiguration", { kubernetesVersion: str, contextLines: { t: "int", go: "int" } }),
    node: struct("UpgradeNodeConfiguration", { ...upgradeCommon, certificateRenewal: bool, etcdUpgrade: bool, skipPhases: strings, patches }),
    // etcdUpgrade: added in v1.33 (the page's list of changes)
    plan: struct("UpgradePlanConfiguration", { kubernetesVersion: str, allowExperimentalUpgrades: bool, allowRCUpgrades: bool, dryRun: bool, ignorePreflightErrors: strings, printConfig: bool, etcdUpgrade: bool }),
    timeouts,
  },
};

// ------------------------------------------------------------------ kubelet.config.k8s.io/v1beta1
const logging = struct("LoggingConfiguration", { format: str, flushFrequency: any, verbosity: { t: "int", go: "v1.VerbosityLevel" }, vmodule: any, options: any });
const kubeletConfiguration: Struct = {
  go: "KubeletConfiguration",
  fields: {
    enableServer: bool,
    staticPodPath: str,
    podLogsDir: str,
    syncFrequency: duration,
    fileCheckFrequency: duration,
    httpCheckFrequency: duration,
    staticPodURL: str,
    staticPodURLHeader: { t: "map", of: strings, go: "map[string][]string" },
    address: str,
    port: int32,
    readOnlyPort: int32,
    tlsCertFile: str,
    tlsPrivateKeyFile: str,
    tlsCipherSuites: strings,
    tlsMinVersion: str,
    rotateCertificates: bool,
    serverTLSBootstrap: bool,
    authentication: any,
    authorization: any,
    registryPullQPS: int32,
    registryBurst: int32,
    imagePullCredentialsVerificationPolicy: str,
    preloadedImagesVerificationAllowlist: strings,
    eventRecordQPS: int32,
    eventBurst: int32,
    enableDebuggingHandlers: bool,
    enableContentionProfiling: bool,
    healthzPort: int32,
    healthzBindAddress: str,
    oomScoreAdj: int32,
    clusterDomain: str,
    clusterDNS: strings,
    streamingConnectionIdleTimeout: duration,
    nodeStatusUpdateFrequency: duration,
    nodeStatusReportFrequency: duration,
    nodeLeaseDurationSeconds: int32,
    imageMinimumGCAge: duration,
    imageMaximumGCAge: duration,
    imageGCHighThresholdPercent: int32,
    imageGCLowThresholdPercent: int32,
    volumeStatsAggPeriod: duration,
    kubeletCgroups: str,
    systemCgroups: str,
    cgroupRoot: str,
    cgroupsPerQOS: bool,
    cgroupDriver: str,
    cpuManagerPolicy: str,
    singleProcessOOMKill: bool,
    cpuManagerPolicyOptions: stringMap,
    cpuManagerReconcilePeriod: duration,
    memoryManagerPolicy: str,
    topologyManagerPolicy: str,
    topologyManagerScope: str,
    topologyManagerPolicyOptions: stringMap,
    qosReserved: stringMap,
    runtimeRequestTimeout: duration,
    hairpinMode: str,
    maxPods: int32,
    podCIDR: str,
    podPidsLimit: int64,
    resolvConf: str,
    runOnce: bool,
    cpuCFSQuota: bool,
    cpuCFSQuotaPeriod: duration,
    nodeStatusMaxImages: int32,
    maxOpenFiles: int64,
    contentType: str,
    kubeAPIQPS: int32,
    kubeAPIBurst: int32,
    serializeImagePulls: bool,
    maxParallelImagePulls: int32,
    evictionHard: stringMap,
    evictionSoft: stringMap,
    evictionSoftGracePeriod: stringMap,
    evictionPressureTransitionPeriod: duration,
    evictionMaxPodGracePeriod: int32,
    evictionMinimumReclaim: stringMap,
    mergeDefaultEvictionSettings: bool,
    podsPerCore: int32,
    enableControllerAttachDetach: bool,
    protectKernelDefaults: bool,
    makeIPTablesUtilChains: bool,
    iptablesMasqueradeBit: int32,
    iptablesDropBit: int32,
    featureGates: boolMap,
    failSwapOn: bool,
    memorySwap: any,
    containerLogMaxSize: str,
    containerLogMaxFiles: int32,
    containerLogMaxWorkers: int32,
    containerLogMonitorInterval: duration,
    configMapAndSecretChangeDetectionStrategy: str,
    systemReserved: stringMap,
    kubeReserved: stringMap,
    reservedSystemCPUs: str,
    showHiddenMetricsForVersion: str,
    systemReservedCgroup: str,
    kubeReservedCgroup: str,
    enforceNodeAllocatable: strings,
    allowedUnsafeSysctls: strings,
    volumePluginDir: str,
    providerID: str,
    kernelMemcgNotification: bool,
    logging,
    enableSystemLogHandler: bool,
    enableSystemLogQuery: bool,
    shutdownGracePeriod: duration,
    shutdownGracePeriodCriticalPods: duration,
    shutdownGracePeriodByPodPriority: any,
    crashLoopBackOff: struct("CrashLoopBackOffConfig", { maxContainerRestartPeriod: duration }),
    reservedMemory: any,
    enableProfilingHandler: bool,
    enableDebugFlagsHandler: bool,
    seccompDefault: bool,
    memoryThrottlingFactor: float64,
    registerWithTaints: listOf(taint, "[]v1.Taint"),
    registerNode: bool,
    tracing: struct("TracingConfiguration", { endpoint: str, samplingRatePerMillion: int32 }),
    localStorageCapacityIsolation: bool,
    containerRuntimeEndpoint: str,
    imageServiceEndpoint: str,
    failCgroupV1: bool,
    userNamespaces: any,
  },
};

// ------------------------------------------------------------------ kubeproxy.config.k8s.io/v1alpha1
const syncPeriods = { syncPeriod: duration, minSyncPeriod: duration };
const kubeProxyConfiguration: Struct = {
  go: "KubeProxyConfiguration",
  fields: {
    featureGates: boolMap,
    clientConnection: struct("ClientConnectionConfiguration", { kubeconfig: str, acceptContentTypes: str, contentType: str, qps: { t: "float", go: "float32" }, burst: int32 }),
    logging,
    hostnameOverride: str,
    bindAddress: str,
    healthzBindAddress: str,
    metricsBindAddress: str,
    bindAddressHardFail: bool,
    enableProfiling: bool,
    showHiddenMetricsForVersion: str,
    mode: str,
    iptables: struct("KubeProxyIPTablesConfiguration", { masqueradeBit: int32, masqueradeAll: bool, localhostNodePorts: bool, ...syncPeriods }),
    ipvs: struct("KubeProxyIPVSConfiguration", { ...syncPeriods, scheduler: str, excludeCIDRs: strings, strictARP: bool, tcpTimeout: duration, tcpFinTimeout: duration, udpTimeout: duration }),
    nftables: struct("KubeProxyNFTablesConfiguration", { masqueradeBit: int32, masqueradeAll: bool, ...syncPeriods }),
    winkernel: struct("KubeProxyWinkernelConfiguration", { networkName: str, sourceVip: str, enableDSR: bool, rootHnsEndpointName: str, forwardHealthCheckVip: bool }),
    detectLocalMode: str,
    detectLocal: struct("DetectLocalConfiguration", { bridgeInterface: str, interfaceNamePrefix: str }),
    clusterCIDR: str,
    nodePortAddresses: strings,
    oomScoreAdj: int32,
    conntrack: struct("KubeProxyConntrackConfiguration", {
      maxPerCore: int32,
      min: int32,
      tcpEstablishedTimeout: duration,
      tcpCloseWaitTimeout: duration,
      tcpBeLiberal: bool,
      udpTimeout: duration,
      udpStreamTimeout: duration,
    }),
    configSyncPeriod: duration,
    portRange: str,
    windowsRunAsService: bool,
  },
};

const KUBEADM_API_VERSION = "kubeadm.k8s.io/v1beta4";

/** KNOWN_KINDS are the documents kubeadm 1.35 reads from --config, by group/version then kind. */
const KNOWN_KINDS: Record<string, Record<string, Struct>> = {
  [KUBEADM_API_VERSION]: {
    InitConfiguration: initConfiguration,
    ClusterConfiguration: clusterConfiguration,
    JoinConfiguration: joinConfiguration,
    ResetConfiguration: resetConfiguration,
    UpgradeConfiguration: upgradeConfiguration,
  },
  "kubelet.config.k8s.io/v1beta1": { KubeletConfiguration: kubeletConfiguration },
  "kubeproxy.config.k8s.io/v1alpha1": { KubeProxyConfiguration: kubeProxyConfiguration },
};

/** OLD_KUBEADM_VERSIONS maps kubeadm's removed API versions to the kubeadm that can still migrate them. */
const OLD_KUBEADM_VERSIONS: Record<string, string> = {
  "kubeadm.k8s.io/v1alpha1": "v1.11",
  "kubeadm.k8s.io/v1alpha2": "v1.12",
  "kubeadm.k8s.io/v1alpha3": "v1.14",
  "kubeadm.k8s.io/v1beta1": "v1.15",
  "kubeadm.k8s.io/v1beta2": "v1.22",
};

/** KubeadmConfigError is a configuration kubeadm refuses; message is what kubeadm prints, line by line. */
export class KubeadmConfigError extends Error {
  override readonly name = "KubeadmConfigError";
}

/** gvkString is Go's %#v of a schema.GroupVersionKind, as kubeadm's warnings print it. */
const gvkString = (apiVersion: string, kind: string) => {
  const slash = apiVersion.lastIndexOf("/");
  return `schema.GroupVersionKind{Group:${JSON.stringify(apiVersion.slice(0, slash))}, Version:${JSON.stringify(apiVersion.slice(slash + 1))}, Kind:${JSON.stringify(kind)}}`;
};

const jsonKind = (v: unknown) => (Array.isArray(v) ? "array" : v === null ? "null" : typeof v === "object" ? "object" : typeof v === "boolean" ? "bool" : typeof v);

/** GO_DURATION is what Go's time.ParseDuration accepts (metav1.Duration's unmarshalling). */
const GO_DURATION = /^[-+]?(0|(\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$/;

interface Walk {
  pkg: string; // the Go package of the document's types, as json errors name struct types
  unknown: string[]; // strict decoding: paths of fields the types do not have
  typeError?: string; // the first json type error, fatal
}

/** check walks value against field at path (json's dotted path), as encoding/json plus strict decoding would. */
function check(value: unknown, field: Field, path: string, owner: string, w: Walk): void {
  if (value === null || value === undefined || field.t === "any" || w.typeError) return;
  const typeError = (go: string) => {
    const what = typeof value === "number" ? `number ${value}` : jsonKind(value);
    w.typeError = `json: cannot unmarshal ${what} into Go struct field ${owner}.${path} of type ${go}`;
  };
  switch (field.t) {
    case "string":
      if (typeof value !== "string") typeError(field.go);
      return;
    case "bool":
      if (typeof value !== "boolean") typeError(field.go);
      return;
    case "int":
      if (typeof value !== "number" || !Number.isInteger(value)) typeError(field.go);
      else if (field.go === "int32" && (value < -(2 ** 31) || value >= 2 ** 31)) typeError(field.go);
      return;
    case "float":
      if (typeof value !== "number") typeError(field.go);
      return;
    case "duration":
      if (typeof value !== "string") typeError("v1.Duration");
      else if (!GO_DURATION.test(value)) w.typeError = `time: invalid duration ${JSON.stringify(value)}`;
      return;
    case "list":
      if (!Array.isArray(value)) return typeError(field.go);
      value.forEach((v, i) => check(v, field.of, `${path}[${i}]`, owner, w));
      return;
    case "map":
      if (jsonKind(value) !== "object") return typeError(field.go);
      for (const [k, v] of Object.entries(value as object)) check(v, field.of, `${path}.${k}`, owner, w);
      return;
    case "struct":
      if (jsonKind(value) !== "object") return typeError(`${w.pkg}.${field.s.go}`);
      checkStruct(value as Record<string, unknown>, field.s, path, w);
      return;
  }
}

function checkStruct(obj: Record<string, unknown>, s: Struct, path: string, w: Walk): void {
  for (const [k, v] of Object.entries(obj)) {
    const at = path ? `${path}.${k}` : k;
    const field = s.fields[k];
    if (field) check(v, field, at, s.go, w);
    else w.unknown.push(at);
  }
}

/** KubeadmDocument is one document of a kubeadm config: its kind and its content as JSON. */
export interface KubeadmDocument {
  apiVersion: string;
  kind: string;
  object: Record<string, unknown>;
}

/**
 * parseKubeadmConfig reads a multi-document kubeadm config and checks every document as kubeadm
 * 1.35 would (see the top of this file), throwing KubeadmConfigError with kubeadm's wording.
 */
export function parseKubeadmConfig(text: string): KubeadmDocument[] {
  // sigs.k8s.io/yaml (go-yaml) reads YAML 1.1: unquoted on/yes/no are booleans there
  const parsed = parseAllDocuments(text, { version: "1.1" });
  if (!Array.isArray(parsed)) return [];
  const out: KubeadmDocument[] = [];
  for (const doc of parsed) {
    if (doc.errors.length > 0) throw new KubeadmConfigError(`error converting YAML to JSON: yaml: ${doc.errors[0]?.message}`);
    const object = doc.toJS() as unknown;
    if (object === null || object === undefined) continue; // an empty document, as kubeadm skips it
    if (jsonKind(object) !== "object") throw new KubeadmConfigError(`json: cannot unmarshal ${jsonKind(object)} into Go value of type struct { APIVersion string "json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }`);
    const o = object as Record<string, unknown>;
    const apiVersion = typeof o.apiVersion === "string" ? o.apiVersion : "";
    const kind = typeof o.kind === "string" ? o.kind : "";
    const slash = apiVersion.lastIndexOf("/");
    const group = slash < 0 ? "" : apiVersion.slice(0, slash);
    // kubeadm's SplitYAMLDocuments: group, version and kind route a document
    if (!group || !kind || slash === apiVersion.length - 1) {
      throw new KubeadmConfigError(`invalid configuration for GroupVersionKind {Group:${group} Version:${apiVersion.slice(slash + 1)} Kind:${kind}}: kind and apiVersion is mandatory information that must be specified`);
    }
    const old = OLD_KUBEADM_VERSIONS[apiVersion];
    if (old) {
      throw new KubeadmConfigError(
        `your configuration file uses an old API spec: ${JSON.stringify(apiVersion)} (kind: ${JSON.stringify(kind)}). Please use kubeadm ${old} instead and run 'kubeadm config migrate --old-config old.yaml --new-config new.yaml', which will write the new, similar spec using a newer API version.`,
      );
    }
    const schema = KNOWN_KINDS[apiVersion]?.[kind];
    if (!schema) {
      // kubeadm routes its own documents by kind alone, then decodes them with its scheme (which has
      // v1beta4 only here: the double knows what u7s writes)
      if (kind in (KNOWN_KINDS[KUBEADM_API_VERSION] ?? {})) {
        throw new KubeadmConfigError(`no kind ${JSON.stringify(kind)} is registered for version ${JSON.stringify(apiVersion)} in scheme "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme/scheme.go:31"`);
      }
      // the kubelet's and kube-proxy's groups: componentconfigs' UnsupportedConfigVersionError
      const supported = Object.keys(KNOWN_KINDS).find((gv) => gv !== KUBEADM_API_VERSION && gv.startsWith(`${group}/`));
      if (supported && supported !== apiVersion) {
        throw new KubeadmConfigError(`unsupported apiVersion ${JSON.stringify(apiVersion)}, you may have to do manual conversion to ${JSON.stringify(supported)} and run kubeadm again`);
      }
      // any other document: kubeadm init ignores it with a warning
      throw new KubeadmConfigError(
        `[config] WARNING: Ignored configuration document with GroupVersionKind ${apiVersion}, Kind=${kind}\n` +
          "kubeadm double: refusing it (kubeadm init ignores such a document, `kubeadm config validate` refuses it)",
      );
    }
    const { apiVersion: _v, kind: _k, ...fields } = o;
    const w: Walk = { pkg: apiVersion.slice(slash + 1), unknown: [] };
    checkStruct(fields, schema, "", w);
    if (w.typeError) {
      throw new KubeadmConfigError(`error unmarshaling configuration ${gvkString(apiVersion, kind)}: ${w.typeError}\n${w.typeError}`);
    }
    if (w.unknown.length > 0) {
      const strict = w.unknown.map((p) => `unknown field ${JSON.stringify(p)}`).join(", ");
      throw new KubeadmConfigError(
        `error unmarshaling configuration ${gvkString(apiVersion, kind)}: strict decoding error: ${strict}\n` +
          "kubeadm double: refusing it (kubeadm init ignores an unknown field with this warning, `kubeadm config validate` refuses it)",
      );
    }
    out.push({ apiVersion, kind, object: o });
  }
  return out;
}

/** SAFE is what a value printed for the kubeadm double's shell may contain. */
const SAFE = /^[A-Za-z0-9.:/_-]+$/;

/**
 * kubeadmConfigLines checks a kubeadm init config (parseKubeadmConfig) and returns "KEY VALUE" lines:
 * bindPort, controlPlaneEndpoint, podSubnet, and one certSAN line per apiServer.certSANs entry.
 */
export function kubeadmConfigLines(text: string): string[] {
  const docs = parseKubeadmConfig(text).map((d) => d.object as Record<string, any>);
  const init = docs.find((d) => d.kind === "InitConfiguration") ?? {};
  const cluster = docs.find((d) => d.kind === "ClusterConfiguration") ?? {};
  const lines: [string, unknown][] = [
    ["bindPort", init.localAPIEndpoint?.bindPort ?? 6443],
    ["controlPlaneEndpoint", cluster.controlPlaneEndpoint ?? ""],
    ["podSubnet", cluster.networking?.podSubnet ?? ""],
    ...((cluster.apiServer?.certSANs ?? []) as unknown[]).map((s): [string, unknown] => ["certSAN", s]),
  ];
  return lines
    .filter(([, v]) => v !== "")
    .map(([k, v]) => {
      if (!SAFE.test(String(v))) throw new Error(`kubeadm config: ${k} ${JSON.stringify(v)} has unexpected characters`);
      return `${k} ${v}`;
    });
}
