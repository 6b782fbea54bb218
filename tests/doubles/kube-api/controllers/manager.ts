// The control loop of the API double: what kube-controller-manager, kube-scheduler and the nodes'
// kubelets do after kubeadm, played in the API process against its store. One pass runs every part
// in a fixed order; a pass runs soon after any change of the store (the parts' own writes included,
// until nothing changes) and on a timer (start delays, tolerationSeconds).
import type { Store } from "../storage.ts";
import { Kubelets, type KubeletOptions } from "../kubelet.ts";
import { schedule } from "../scheduler.ts";
import { syncDaemonSets } from "./daemonset.ts";
import { syncDeployments } from "./deployment.ts";
import { collectGarbage } from "./gc.ts";
import { evictPods, syncNodeTaints } from "./nodelifecycle.ts";
import type { Clock } from "./objects.ts";
import { readPodStartConfig } from "./podconfig.ts";
import { syncReplicaSets } from "./replicaset.ts";
import { syncStatefulSets } from "./statefulset.ts";

/** ControlPlaneOptions configure the played control plane. */
export interface ControlPlaneOptions extends KubeletOptions {
  /** podsConfig: the pods.json of start delays (controllers/podconfig.ts); unset: the defaults. */
  podsConfig?: string;
  /** clock: the time (Date.now unless a unit test steps it). */
  clock?: Clock;
}

/** TICK_MS is how often a pass runs without a change (a start delay ends at most this late). */
const TICK_MS = 250;
/** MAX_PASSES bounds the passes one trigger may chain (a part that rewrites forever is a bug, said on stderr). */
const MAX_PASSES = 50;

/** ControlPlane runs the scheduler, controllers and kubelets of the double. */
export class ControlPlane {
  private readonly clock: Clock;
  private readonly kubelets: Kubelets;
  private timer: ReturnType<typeof setInterval> | undefined;
  private pending: ReturnType<typeof setTimeout> | undefined;
  private unsubscribe: (() => void) | undefined;
  private running = false;

  constructor(
    private readonly store: Store,
    private readonly opts: ControlPlaneOptions = {},
  ) {
    this.clock = opts.clock ?? Date.now;
    this.kubelets = new Kubelets(store, this.clock, opts);
  }

  /** pass runs every part once: node taints, garbage collection, workload controllers, scheduler, kubelets, evictions. */
  pass(): void {
    syncNodeTaints(this.store, this.clock);
    collectGarbage(this.store, this.clock);
    syncDeployments(this.store, this.clock);
    syncReplicaSets(this.store);
    syncDaemonSets(this.store);
    syncStatefulSets(this.store);
    schedule(this.store, this.clock);
    this.kubelets.sync(readPodStartConfig(this.opts.podsConfig));
    evictPods(this.store, this.clock);
    syncNodeTaints(this.store, this.clock);
  }

  /** settle runs passes until one changes nothing (bounded). */
  settle(): void {
    if (this.running) return;
    this.running = true;
    let changed = false;
    const off = this.store.subscribe(() => (changed = true));
    try {
      for (let i = 0; i < MAX_PASSES; i++) {
        changed = false;
        this.pass();
        if (!changed) return;
      }
      console.error(`kube-api-double: the controllers still changed objects after ${MAX_PASSES} passes`);
    } catch (err) {
      console.error(`kube-api-double: controllers: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    } finally {
      off();
      this.running = false;
    }
  }

  /** start runs passes after store changes and every TICK_MS until stop. */
  start(): void {
    this.unsubscribe = this.store.subscribe(() => {
      if (this.running || this.pending) return;
      this.pending = setTimeout(() => {
        this.pending = undefined;
        this.settle();
      }, 10);
    });
    this.timer = setInterval(() => this.settle(), TICK_MS);
    this.settle();
  }

  /** stop ends the loop. */
  stop(): void {
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    if (this.pending) clearTimeout(this.pending);
  }
}
