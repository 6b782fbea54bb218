// The defaulting the real API server applies on every write of a workload, for the fields clients
// read back: `kubectl rollout status` refuses a DaemonSet or StatefulSet without
// updateStrategy.type RollingUpdate, and the controllers need replicas and the policies. Values from
// the API reference (apps/v1 DaemonSetSpec, DeploymentSpec, StatefulSetSpec):
// https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/
import type { ResourceType } from "./resources.ts";
import type { KubeObject } from "./storage.ts";

type Spec = Record<string, unknown>;

const DEFAULTS: Record<string, (spec: Spec) => Spec> = {
  daemonsets: (s) => ({
    ...s,
    updateStrategy: s.updateStrategy ?? { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
    revisionHistoryLimit: s.revisionHistoryLimit ?? 10,
  }),
  deployments: (s) => ({
    ...s,
    replicas: s.replicas ?? 1,
    strategy: s.strategy ?? { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "25%", maxSurge: "25%" } },
    revisionHistoryLimit: s.revisionHistoryLimit ?? 10,
    progressDeadlineSeconds: s.progressDeadlineSeconds ?? 600,
  }),
  statefulsets: (s) => ({
    ...s,
    replicas: s.replicas ?? 1,
    podManagementPolicy: s.podManagementPolicy ?? "OrderedReady",
    updateStrategy: s.updateStrategy ?? { type: "RollingUpdate", rollingUpdate: { partition: 0 } },
    revisionHistoryLimit: s.revisionHistoryLimit ?? 10,
  }),
  replicasets: (s) => ({ ...s, replicas: s.replicas ?? 1 }),
};

/** applyDefaults fills in the spec defaults of an apps/v1 workload (other kinds are returned as they are). */
export function applyDefaults(r: ResourceType, obj: KubeObject): KubeObject {
  const fill = r.group === "apps" ? DEFAULTS[r.plural] : undefined;
  if (!fill || typeof obj.spec !== "object" || obj.spec === null) return obj;
  return { ...obj, spec: fill(obj.spec as Spec) };
}
