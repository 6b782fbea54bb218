// Waiting until this host's node is Ready, as a new user's first `kubectl get nodes` expects: what
// the node still waits for (registration, its CNI, its Flannel pod) is said while waiting, and on a
// timeout the node's conditions and the Flannel pod's last events say why.
import { U7sError } from "../errors.ts";
import type { Step } from "../steps.ts";
import { FLANNEL_NAMESPACE } from "./flannel.ts";
import { container, type ClusterEnv } from "./node.ts";

/** READY_POLL is the pause between two looks at the node (tests shorten it). */
export const READY_POLL = { ms: 2000 };
/** FLANNEL_SELECTOR picks Flannel's pods (the chart's DaemonSet labels them app=flannel). */
export const FLANNEL_SELECTOR = "app=flannel";

/** Condition is one of a node's status conditions. */
export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

/** Taint is one of a node's taints. */
export interface Taint {
  key: string;
  value?: string;
  effect?: string;
}

/** NodeState is what u7s reads of a Node object. */
export interface NodeState {
  name: string;
  conditions: Condition[];
  taints: Taint[];
}

/** parseNode reads `kubectl get node NAME -o json`. */
export function parseNode(json: string): NodeState {
  const n = JSON.parse(json) as { metadata?: { name?: string }; spec?: { taints?: Taint[] | null }; status?: { conditions?: Condition[] | null } };
  return { name: n.metadata?.name ?? "", conditions: n.status?.conditions ?? [], taints: n.spec?.taints ?? [] };
}

/** PodState is what u7s reads of a pod: where it runs, its phase, why it waits, whether it is Ready. */
export interface PodState {
  name: string;
  nodeName: string | undefined;
  phase: string;
  /** waiting: the reason a container waits (ContainerCreating, ImagePullBackOff, CrashLoopBackOff, ...). */
  waiting: string | undefined;
  ready: boolean;
  /** unschedulable: the scheduler's message when no node can take the pod (PodScheduled=False, Unschedulable). */
  unschedulable: string | undefined;
}

interface PodJson {
  metadata?: { name?: string };
  spec?: { nodeName?: string };
  status?: {
    phase?: string;
    conditions?: { type?: string; status?: string; reason?: string; message?: string }[] | null;
    containerStatuses?: { state?: { waiting?: { reason?: string } } }[] | null;
  };
}

/** parsePods reads `kubectl get pods -o json`. */
export function parsePods(json: string): PodState[] {
  const list = JSON.parse(json) as { items?: PodJson[] | null };
  return (list.items ?? []).map((p) => {
    const cond = (type: string) => p.status?.conditions?.find((c) => c.type === type);
    const scheduled = cond("PodScheduled");
    return {
      name: p.metadata?.name ?? "",
      nodeName: p.spec?.nodeName || undefined,
      phase: p.status?.phase ?? "Pending",
      waiting: p.status?.containerStatuses?.map((c) => c.state?.waiting?.reason).find((r) => r !== undefined && r !== ""),
      ready: cond("Ready")?.status === "True",
      unschedulable: scheduled?.status === "False" && scheduled.reason === "Unschedulable" ? (scheduled.message ?? "Unschedulable") : undefined,
    };
  });
}

/** describePod is a pod's state in a few words: "Pending (ContainerCreating)", "Running, not Ready yet". */
export function describePod(p: PodState): string {
  if (p.unschedulable !== undefined) return `Pending: ${p.unschedulable}`;
  if (p.phase === "Running") return p.ready ? "Running" : `Running, not Ready yet${p.waiting ? ` (${p.waiting})` : ""}`;
  return `${p.phase}${p.waiting ? ` (${p.waiting})` : ""}`;
}

/** readyCondition is the node's Ready condition (undefined before the kubelet reported one). */
export function readyCondition(n: NodeState): Condition | undefined {
  return n.conditions.find((c) => c.type === "Ready");
}

/** NETWORK_NOT_READY matches the kubelet's Ready reason or message while no CNI is configured. */
const NETWORK_NOT_READY = /NetworkReady=false|NetworkPluginNotReady|cni/i;

/** networkNotReady tells whether a Ready condition says the node lacks its network (CNI). */
const networkNotReady = (c: Condition) => NETWORK_NOT_READY.test([c.reason, c.message].join(" "));

/** Look is one look at the node: undefined node = not registered (yet), with what the API said. */
export interface Look {
  node: NodeState | undefined;
  /** apiSaid: why the node could not be read (the first line of kubectl's error). */
  apiSaid?: string;
  flannel: PodState | undefined;
}

/** waitingFor says what a node that is not Ready waits for; undefined when it is Ready. */
export function waitingFor(look: Look, nodeName: string): string | undefined {
  const { node, flannel } = look;
  if (node === undefined) return `node ${nodeName} to register${look.apiSaid ? ` (${look.apiSaid})` : ""}`;
  const ready = readyCondition(node);
  if (ready?.status === "True") return undefined;
  const said = ready === undefined ? "no Ready condition yet" : [ready.reason, ready.message].filter(Boolean).join(": ") || `Ready=${ready.status}`;
  if (ready !== undefined && networkNotReady(ready)) {
    return flannel === undefined ? `a CNI: no Flannel pod on ${nodeName} yet (node: ${said})` : `the CNI from Flannel pod ${flannel.name}: ${describePod(flannel)}`;
  }
  return `node ${nodeName}: ${said}`;
}

/** isNetworkOnly tells whether the node is registered and lacks only its network (no CNI, no Flannel pod to bring one). */
export function isNetworkOnly(look: Look): boolean {
  const ready = look.node && readyCondition(look.node);
  return ready !== undefined && ready.status !== "True" && look.flannel === undefined && networkNotReady(ready);
}

/** kubectlWith runs kubectl in the node with this kubeconfig; it never throws, a failure is in the result. */
async function kubectlWith(env: ClusterEnv, kubeconfig: string, args: readonly string[]) {
  return env.engine.exec(container(env), ["kubectl", ...args], { env: { KUBECONFIG: kubeconfig } });
}

/** firstLine is the first non-empty line of a command's error output. */
const firstLine = (text: string) => text.split("\n").find((l) => l.trim() !== "")?.trim();

/** lookAtNode reads this node and the Flannel pod on it with the given kubeconfig (admin's, or the kubelet's on a worker). */
export async function lookAtNode(env: ClusterEnv, kubeconfig: string): Promise<Look> {
  const name = env.config.nodeName;
  const n = await kubectlWith(env, kubeconfig, ["get", "node", name, "-o", "json"]);
  if (n.exitCode !== 0) return { node: undefined, apiSaid: firstLine(n.stderr), flannel: undefined };
  const pods = await kubectlWith(env, kubeconfig, ["get", "pods", "-n", FLANNEL_NAMESPACE, "-l", FLANNEL_SELECTOR, "-o", "json"]);
  // The list is filtered here, not with a field selector: any API server answers a label selector.
  const flannel = pods.exitCode === 0 ? parsePods(pods.stdout).find((p) => p.nodeName === name) : undefined;
  return { node: parseNode(n.stdout), flannel };
}

/** EVENT_LINES is how many of the Flannel pod's last events a timeout shows. */
export const EVENT_LINES = 5;

/** lastEvents returns the last events of a pod in kube-flannel, one line each ("Warning FailedMount: ..."). */
export async function lastEvents(env: ClusterEnv, kubeconfig: string, pod: string): Promise<string[]> {
  const r = await kubectlWith(env, kubeconfig, ["get", "events", "-n", FLANNEL_NAMESPACE, "--field-selector", `involvedObject.name=${pod}`, "-o", "json"]);
  if (r.exitCode !== 0) return [`(its events cannot be read here: ${firstLine(r.stderr) ?? `kubectl exit code ${r.exitCode}`})`];
  interface EventJson {
    type?: string;
    reason?: string;
    message?: string;
    involvedObject?: { name?: string };
    lastTimestamp?: string | null;
    eventTime?: string | null;
  }
  const events = ((JSON.parse(r.stdout) as { items?: EventJson[] | null }).items ?? [])
    .filter((e) => e.involvedObject?.name === pod) // also where an API server ignores the field selector
    .sort((a, b) => (a.lastTimestamp ?? a.eventTime ?? "").localeCompare(b.lastTimestamp ?? b.eventTime ?? ""));
  if (events.length === 0) return ["(no events)"];
  return events.slice(-EVENT_LINES).map((e) => `${e.type ?? "Normal"} ${e.reason ?? ""}: ${(e.message ?? "").trim()}`);
}

/** notReadyDetail is what a timeout shows: the node's conditions, its Flannel pod and that pod's last events. */
export async function notReadyDetail(env: ClusterEnv, kubeconfig: string, look: Look): Promise<string> {
  const lines: string[] = [];
  if (look.node) {
    lines.push(`conditions of node ${look.node.name}:`);
    for (const c of look.node.conditions) lines.push(`  ${c.type}=${c.status}${c.reason ? ` ${c.reason}` : ""}${c.message ? `: ${c.message}` : ""}`);
    if (look.node.conditions.length === 0) lines.push("  (none reported yet)");
  }
  if (look.flannel) {
    lines.push(`Flannel pod ${look.flannel.name}: ${describePod(look.flannel)}; last events:`);
    for (const e of await lastEvents(env, kubeconfig, look.flannel.name)) lines.push(`  ${e}`);
  } else if (look.node) {
    lines.push(`no Flannel pod on ${look.node.name}`);
  }
  return lines.join("\n");
}

/** WaitOptions: how long, with which kubeconfig, and whether a node that only lacks its network may end the wait. */
export interface WaitOptions {
  seconds: number;
  /** what: the --wait value as the user gave it, for messages. */
  what: string;
  kubeconfig: string;
  /** networkLater: end the wait, without error, once the node lacks only a CNI that nothing installed yet (kubeadm-init before install-flannel). */
  networkLater?: boolean;
}

/**
 * waitForReady polls the node until its Ready condition is True, printing what it waits for each
 * time that changes; after opts.seconds it fails with the node's conditions and the Flannel pod's
 * last events. It returns "network" when it ended because only the network is missing (networkLater).
 */
export async function waitForReady(env: ClusterEnv, opts: WaitOptions): Promise<"ready" | "network"> {
  const deadline = performance.now() + opts.seconds * 1000;
  let said: string | undefined;
  for (;;) {
    const look = await lookAtNode(env, opts.kubeconfig);
    const waiting = waitingFor(look, env.config.nodeName);
    if (waiting === undefined) return "ready";
    if (opts.networkLater && isNetworkOnly(look)) return "network";
    if (waiting !== said) env.log.info(`   waiting for ${waiting}`);
    said = waiting;
    if (performance.now() >= deadline) {
      throw new U7sError(`node ${env.config.nodeName} is not Ready after ${opts.what}: waiting for ${waiting}`, {
        detail: await notReadyDetail(env, opts.kubeconfig, look),
        hint: `see \`u7s logs -u kubelet\` and \`u7s kubectl describe node ${env.config.nodeName}\`; a slow host (first image pulls) may need a longer --wait`,
      });
    }
    await Bun.sleep(READY_POLL.ms);
  }
}

/** readyStep waits for this node to be Ready (skipped with --wait 0). */
export function readyStep(env: ClusterEnv, opts: WaitOptions): Step {
  return {
    title: `Waiting for node ${env.config.nodeName} to be Ready (up to ${opts.what})`,
    doing: `node ${env.config.nodeName} did not become Ready`,
    skip: async () => (opts.seconds <= 0 ? "not waited for (--wait 0)" : undefined),
    run: async () => {
      if ((await waitForReady(env, opts)) === "network") {
        env.log.info(`   node ${env.config.nodeName} is registered; it is Ready once a network add-on runs (next: \`u7s install-flannel\`)`);
      }
    },
  };
}
