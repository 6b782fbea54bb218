import { U7sError } from "../errors.ts";
import type { Log } from "../log.ts";
import { writeFileAtomic } from "../state/files.ts";
import { runSteps, type Step } from "../steps.ts";
import { installSyncService, requireSynced, syncExternalIps } from "./external-ip.ts";
import { installFlannel } from "./flannel.ts";
import { ensureFlannelImages } from "../image/node-images.ts";
import { kubeadmInit, kubeadmJoin, kubeadmReset, saveControlPlaneHost } from "./kubeadm.ts";
import { type JoinTarget } from "./join-file.ts";
import { localKubeconfig } from "./kubeconfig.ts";
import { ADMIN_CONF, inNode, KUBELET_CONF, type ClusterEnv } from "./node.ts";
import { untaintStep } from "./control-plane.ts";
import { readyStep } from "./ready.ts";

/** undoOnFailure runs fn; when it fails, undo runs (its own failure is added to the error) and the error is rethrown. */
async function undoOnFailure(fn: () => Promise<void>, undo: () => Promise<void>, what: string): Promise<void> {
  try {
    await fn();
  } catch (err) {
    try {
      await undo();
    } catch (undoErr) {
      throw new U7sError(err instanceof Error ? err.message : String(err), {
        detail: `${err instanceof U7sError && err.detail ? `${err.detail}\n` : ""}could not undo (${what}): ${(undoErr as Error).message.split("\n")[0]}`,
        cause: err,
      });
    }
    throw err;
  }
}

/** ClusterOptions are the bring-up choices of `up`, kubeadm-init and kubeadm-join. */
export interface ClusterOptions {
  /** keepTaint keeps kubeadm's control-plane taint (--control-plane-taint). */
  keepTaint: boolean;
  /** waitSeconds: how long to wait for this node to be Ready (0: not at all); waitText is it as given (e.g. 5m). */
  waitSeconds: number;
  waitText: string;
}

/** initSteps are kubeadm-init's steps: init (undone with kubeadm reset if it fails), the taint removed (unless kept), sync external IPs, start the sync service. */
export function initSteps(env: ClusterEnv, debug: boolean, keepTaint: boolean): Step[] {
  return [
    {
      title: "Initialising the control plane (kubeadm init)",
      doing: "cannot initialise the control plane with kubeadm",
      // A half-initialised node would fail every later `kubeadm init` on its preflight: reset what this run began.
      run: () => undoOnFailure(() => kubeadmInit(env, debug), () => kubeadmReset(env), "kubeadm reset --force"),
    },
    untaintStep(env, keepTaint),
    syncStep(env),
    syncServiceStep(env),
  ];
}

/** syncServiceStep (re)starts the service in the node that keeps joining nodes synced, with this u7s's script. */
export function syncServiceStep(env: ClusterEnv): Step {
  return {
    title: "Starting the external-IP sync service in the node",
    doing: "cannot start the external-IP sync service",
    run: () => installSyncService(env),
  };
}

/** syncStep sets every node's ExternalIP from its host IP (upstream's sync-external-ip). */
export function syncStep(env: ClusterEnv): Step {
  return {
    title: "Setting external IPs (sync-external-ip)",
    doing: "cannot set the nodes' external IPs",
    run: async () => {
      for (const line of await syncExternalIps(env)) env.log.info(`   ${line}`);
    },
  };
}

/** flannelStep installs Flannel with Helm once external IPs are synced (weakness 10: never before). */
export function flannelStep(env: ClusterEnv): Step {
  return {
    title: `Installing Flannel (helm, backend port ${env.config.portFlannel}/udp)`,
    doing: "cannot install Flannel",
    run: async () => {
      await requireSynced(env);
      await ensureFlannelImages(env); // no registry and not loaded: say which image and how to bring it
      if (!(await installFlannel(env))) env.log.info(`   already installed with backend port ${env.config.portFlannel}`);
    },
  };
}

/** readLocalKubeconfig reads the node's admin.conf and points it at this host's published apiserver port. */
export async function readLocalKubeconfig(env: ClusterEnv): Promise<string> {
  const admin = (await inNode(env, ["cat", ADMIN_CONF])).stdout;
  return localKubeconfig(admin, env.config.portKubeApiserver, env.config.nodeName);
}

/** kubeconfigStep writes the admin kubeconfig for this host (0600, atomically) to path. */
export function kubeconfigStep(env: ClusterEnv, path: string): Step {
  return {
    title: `Writing the kubeconfig (${path})`,
    doing: "cannot write the kubeconfig",
    run: async () => writeFileAtomic(path, await readLocalKubeconfig(env)),
  };
}

/** joinSteps are kubeadm-join's steps: record the control plane's address, then join (reset again if the join fails). */
export function joinSteps(env: ClusterEnv, f: JoinTarget, debug: boolean): Step[] {
  return [
    {
      title: `Recording the control plane ${f.controlPlane.nodeName} at ${f.controlPlane.hostIp}`,
      doing: "cannot record the control plane's address in the node",
      run: () => saveControlPlaneHost(env, f),
    },
    {
      title: `Joining the cluster at ${f.join.endpoint} (kubeadm join)`,
      doing: "cannot join the cluster with kubeadm",
      run: () => undoOnFailure(() => kubeadmJoin(env, f, debug), () => kubeadmReset(env), "kubeadm reset --force"),
    },
  ];
}

/** waitStep waits for this node to be Ready with the kubeconfig its role has (admin's on a control plane, the kubelet's on a worker). */
export function waitStep(env: ClusterEnv, opts: ClusterOptions, role: "control-plane" | "worker", networkLater = false): Step {
  return readyStep(env, { seconds: opts.waitSeconds, what: opts.waitText, kubeconfig: role === "control-plane" ? ADMIN_CONF : KUBELET_CONF, networkLater });
}

/**
 * bringUpControlPlane is the one-shot part of `u7s up` after the node: init (with the taint removed
 * unless kept), sync, Flannel, kubeconfig, then the wait for Ready; each part skips what is done. An
 * initialised control plane keeps its taints as they are: a re-run changes nothing.
 */
export async function bringUpControlPlane(env: ClusterEnv, role: "control-plane" | "none", kubeconfigPath: string, debug: boolean, log: Log, opts: ClusterOptions): Promise<void> {
  const steps: Step[] = role === "none" ? initSteps(env, debug, opts.keepTaint) : [syncStep(env), syncServiceStep(env)];
  if (role === "control-plane") log.info(`node ${env.config.nodeName} is already initialised (kubeadm init is not run again)`);
  await runSteps(log, [...steps, flannelStep(env), kubeconfigStep(env, kubeconfigPath), waitStep(env, opts, "control-plane")]);
}
