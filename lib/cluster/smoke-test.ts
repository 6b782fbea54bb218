import { stringify } from "yaml";
import { U7sError } from "../errors.ts";
import { CommandError } from "../exec.ts";
import type { Step } from "../steps.ts";
import { CONTROL_PLANE_TAINT } from "./control-plane.ts";
import { ADMIN_CONF, container, kubectl, type ClusterEnv } from "./node.ts";
import { parsePods } from "./ready.ts";

/** SMOKE_NAMESPACE holds everything the smoke test creates; it is deleted afterwards. */
export const SMOKE_NAMESPACE = "u7s-smoke-test";
/** SMOKE_REPLICAS is how many server pods the StatefulSet runs (upstream's smoke test uses 3). */
export const SMOKE_REPLICAS = 3;

/** SmokeImages are the smoke test's images; airgapped clusters override them with images they loaded. */
export interface SmokeImages {
  server: string;
  client: string;
}

/** DEFAULT_SMOKE_IMAGES need a registry; `u7s smoke-test --server-image/--client-image` replace them. */
export const DEFAULT_SMOKE_IMAGES: SmokeImages = { server: "docker.io/library/nginx:alpine", client: "docker.io/library/busybox:stable" };

/** smokeManifest is a headless Service and a StatefulSet whose pods prefer different nodes. */
export function smokeManifest(images: SmokeImages): string {
  const labels = { app: "u7s-smoke" };
  const docs = [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: SMOKE_NAMESPACE } },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "smoke", namespace: SMOKE_NAMESPACE },
      spec: { clusterIP: "None", selector: labels, ports: [{ name: "http", port: 80 }] },
    },
    {
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: { name: "smoke", namespace: SMOKE_NAMESPACE },
      spec: {
        serviceName: "smoke",
        replicas: SMOKE_REPLICAS,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            // Spread over the nodes, so pod-to-pod traffic crosses hosts (VXLAN) where there are several.
            affinity: {
              podAntiAffinity: {
                preferredDuringSchedulingIgnoredDuringExecution: [
                  { weight: 100, podAffinityTerm: { labelSelector: { matchLabels: labels }, topologyKey: "kubernetes.io/hostname" } },
                ],
              },
            },
            containers: [{ name: "server", image: images.server, ports: [{ containerPort: 80 }] }],
          },
        },
      },
    },
  ];
  return docs.map((d) => `---\n${stringify(d)}`).join("");
}

/** clientScript fetches each replica by its DNS name (smoke-N.smoke), failing on the first that does not answer. */
export function clientScript(): string {
  const names = Array.from({ length: SMOKE_REPLICAS }, (_, i) => `smoke-${i}.smoke`).join(" ");
  return `set -e; for n in ${names}; do wget -q -T 10 -O /dev/null "http://$n/"; echo "ok $n"; done`;
}

/** SMOKE_POLL: each look waits for the rollout this long, then pauses (tests shorten both). */
export const SMOKE_POLL = { rolloutSeconds: 5, pauseMs: 1000 };
/**
 * UNSCHEDULABLE_LOOKS: a pod the scheduler calls Unschedulable on this many looks in a row (about
 * 15 s) fails the test at once: right after a node turns Ready its not-ready taint may linger for a
 * few seconds, but a taint no pod tolerates, or no node at all, stays.
 */
export const UNSCHEDULABLE_LOOKS = 3;

/** unschedulableError says which pod no node can take and why (the scheduler's message), with what to do. */
function unschedulableError(pod: string, message: string): U7sError {
  const hint = message.includes(CONTROL_PLANE_TAINT)
    ? `the control plane keeps its taint (made with --control-plane-taint): remove it with \`u7s kubectl taint nodes --all ${CONTROL_PLANE_TAINT}-\`, or join a worker (\`u7s up --join FILE\` on another host)`
    : `see \`u7s kubectl -n ${SMOKE_NAMESPACE} describe pod ${pod}\``;
  return new U7sError(`no node can take pod ${pod}: ${message}`, { hint });
}

/**
 * waitForRollout waits for the StatefulSet to roll out, looking at its pods between short waits: one
 * the scheduler keeps calling Unschedulable fails at once with the scheduler's message (instead of
 * after the whole timeout); otherwise the rollout's own error ends it after timeoutSeconds.
 */
export async function waitForRollout(env: ClusterEnv, timeoutSeconds: number): Promise<void> {
  const deadline = performance.now() + timeoutSeconds * 1000;
  let looks = 0;
  for (;;) {
    const left = Math.max(1, Math.ceil((deadline - performance.now()) / 1000));
    const cmd = ["kubectl", "-n", SMOKE_NAMESPACE, "rollout", "status", "statefulset/smoke", `--timeout=${Math.min(SMOKE_POLL.rolloutSeconds, left)}s`];
    const opts = { env: { KUBECONFIG: ADMIN_CONF } };
    const r = await env.engine.exec(container(env), cmd, opts);
    if (r.exitCode === 0) return;
    const stuck = parsePods(await kubectl(env, ["-n", SMOKE_NAMESPACE, "get", "pods", "-l", "app=u7s-smoke", "-o", "json"])).find((p) => p.unschedulable !== undefined);
    looks = stuck ? looks + 1 : 0;
    if (stuck && looks >= UNSCHEDULABLE_LOOKS) throw unschedulableError(stuck.name, stuck.unschedulable!);
    if (performance.now() >= deadline) throw new CommandError(env.engine.execArgs(container(env), cmd, opts), r);
    await Bun.sleep(SMOKE_POLL.pauseMs);
  }
}

/** smokeSteps are upstream's smoke test: nodes Ready, the StatefulSet rolled out, each replica reachable by name. */
export function smokeSteps(env: ClusterEnv, images: SmokeImages, timeoutSeconds: number): Step[] {
  const t = `--timeout=${timeoutSeconds}s`;
  return [
    { title: "Waiting for every node to be Ready", run: async () => void (await kubectl(env, ["wait", "--for=condition=Ready", "nodes", "--all", t])) },
    { title: `Creating a ${SMOKE_REPLICAS}-replica StatefulSet behind a headless Service`, run: async () => void (await kubectl(env, ["apply", "-f", "-"], { input: smokeManifest(images) })) },
    { title: "Waiting for the StatefulSet to roll out", run: () => waitForRollout(env, timeoutSeconds) },
    {
      title: "Fetching each replica by its DNS name from a client pod",
      run: async () => {
        const out = await kubectl(env, ["-n", SMOKE_NAMESPACE, "run", "smoke-client", `--image=${images.client}`, "--restart=Never", "--rm", "-i", "--quiet", "--command", "--", "sh", "-c", clientScript()], { input: "" });
        for (const l of out.split("\n").filter(Boolean)) env.log.info(`   ${l}`);
      },
    },
  ];
}

/** cleanupSmoke deletes the smoke test's namespace. */
export async function cleanupSmoke(env: ClusterEnv): Promise<void> {
  await kubectl(env, ["delete", "namespace", SMOKE_NAMESPACE, "--ignore-not-found", "--wait=false"]);
}
