import { FLANNEL_CHART_PATH } from "../assets.ts";
import { ADMIN_CONF, container, inNode, kubectl, type ClusterEnv } from "./node.ts";

/** FLANNEL_NAMESPACE is where Flannel runs, labelled to allow privileged pods. */
export const FLANNEL_NAMESPACE = "kube-flannel";
/** FLANNEL_RELEASE is the Helm release name. */
export const FLANNEL_RELEASE = "flannel";

/** helmArgs is `helm upgrade --install` of the image's Flannel chart with this host's Flannel port. */
export function helmArgs(portFlannel: number): string[] {
  return [
    "helm",
    "upgrade",
    "--install",
    FLANNEL_RELEASE,
    FLANNEL_CHART_PATH, // baked into the node image: no chart repository is needed
    "--namespace",
    FLANNEL_NAMESPACE,
    "--set",
    `flannel.backendPort=${portFlannel}`,
  ];
}

/** installedBackendPort returns the Flannel release's backendPort when it is deployed, undefined otherwise. */
export async function installedBackendPort(env: ClusterEnv): Promise<number | undefined> {
  const status = await env.engine.exec(container(env), ["helm", "status", FLANNEL_RELEASE, "--namespace", FLANNEL_NAMESPACE, "-o", "json"], { env: { KUBECONFIG: ADMIN_CONF } });
  if (status.exitCode !== 0) return undefined;
  const info = (JSON.parse(status.stdout) as { info?: { status?: string } }).info;
  if (info?.status !== "deployed") return undefined;
  const values = await inNode(env, ["helm", "get", "values", FLANNEL_RELEASE, "--namespace", FLANNEL_NAMESPACE, "-o", "json"], { env: { KUBECONFIG: ADMIN_CONF } });
  const port = (JSON.parse(values.stdout || "{}") as { flannel?: { backendPort?: unknown } } | null)?.flannel?.backendPort;
  return typeof port === "number" ? port : undefined;
}

/** installFlannel labels the namespace and installs (or upgrades) the chart; it returns false when it was already installed as wanted. */
export async function installFlannel(env: ClusterEnv): Promise<boolean> {
  const ns = await env.engine.exec(container(env), ["kubectl", "get", "namespace", FLANNEL_NAMESPACE], { env: { KUBECONFIG: ADMIN_CONF } });
  if (ns.exitCode !== 0) await kubectl(env, ["create", "namespace", FLANNEL_NAMESPACE]);
  // Flannel's pods are privileged: Pod Security admission must allow them in this namespace.
  await kubectl(env, ["label", "--overwrite", "namespace", FLANNEL_NAMESPACE, "pod-security.kubernetes.io/enforce=privileged"]);
  if ((await installedBackendPort(env)) === env.config.portFlannel) return false;
  await inNode(env, helmArgs(env.config.portFlannel), { env: { KUBECONFIG: ADMIN_CONF } });
  return true;
}
