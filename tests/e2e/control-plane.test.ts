// What a one-host control plane does once it runs (issue 14), end to end: dist/u7s on REAL rootless
// Docker and Podman with the cluster test image, whose TEST DOUBLES play a control plane (scheduler,
// controllers, kubelet start delays, Flannel announcing its public IP, Ready only with a CNI; see
// tests/doubles/README.md). Proven here: `up` leaves a schedulable control plane and returns once the
// node is Ready; `--control-plane-taint` keeps pods Pending with the scheduler's message; the sync
// service restarts a slow Flannel pod at most once per change; `up` fails with the node's conditions
// when no CNI ever appears. `smoke-test` gets as far as the doubles allow: its pods run, but its client
// pod's DNS fetch needs a real cluster network (`kubectl run -i` attaches to a real container), which
// tests/cluster/ covers on a host with registry access.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { cleanupNode, eventually, runU7s, show, TEST_ENGINES, clusterTools, type CommandResult, type TestEngine } from "./harness.ts";

setDefaultTimeout(300_000);

const SETUPS: Record<TestEngine, Record<string, string>> = {
  docker: { HOSTNAME: "e2e-cp-docker", PORT_ETCD: "63379", PORT_KUBE_APISERVER: "63443", PORT_KUBELET: "63250", PORT_FLANNEL: "63472" },
  podman: { HOSTNAME: "e2e-cp-podman", PORT_ETCD: "63380", PORT_KUBE_APISERVER: "63444", PORT_KUBELET: "63251", PORT_FLANNEL: "63473" },
};
const CP_TAINT = "node-role.kubernetes.io/control-plane";
const SYNC_UNIT = "u7s-sync-external-ip.service";

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
interface PodJson {
  metadata: { name: string; uid: string };
  spec: { nodeName?: string };
  status: { phase?: string; conditions?: Condition[] };
}

for (const engine of TEST_ENGINES) {
  describe(`a one-host control plane on rootless ${engine} (the doubles play the control plane)`, () => {
    const env = SETUPS[engine];
    const nodeName = `u7s-${env.HOSTNAME}`;
    const u7s = (args: string[], timeoutMs = 280_000) => runU7s(engine, args, { env, timeoutMs });
    const u7sOk = async (args: string[]) => {
      const r = await u7s(args);
      expect(r.exitCode, `u7s ${args.join(" ")}\n${show(r)}`).toBe(0);
      return r;
    };
    const kubectlJson = async <T>(args: string[]): Promise<T> => JSON.parse((await u7sOk(["kubectl", ...args, "-o", "json"])).stdout) as T;
    const node = () => kubectlJson<{ spec?: { taints?: { key: string; effect: string }[] }; status?: { conditions?: Condition[] }; metadata: { annotations?: Record<string, string> } }>(["get", "node", nodeName]);
    const ready = async () => (await node()).status?.conditions?.find((c) => c.type === "Ready")?.status;
    const flannelPods = async () => (await kubectlJson<{ items: PodJson[] }>(["get", "pods", "-n", "kube-flannel", "-l", "app=flannel"])).items.filter((p) => p.spec.nodeName === nodeName);
    /** upWith creates the node, gives the doubles' kubelet its pod start config, then brings the cluster up with these flags. */
    const upWith = async (pods: object, flags: string[]): Promise<CommandResult> => {
      await u7sOk(["up", "--no-init", "--image", clusterTools().clusterImage]);
      await u7sOk(["exec", "--", "sh", "-c", 'mkdir -p /etc/u7s-doubles && printf %s "$1" > /etc/u7s-doubles/pods.json', "sh", JSON.stringify(pods)]);
      return u7s(["up", "--image", clusterTools().clusterImage, ...flags]);
    };
    const deployment = (name: string) => ({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name, namespace: "default" },
      spec: { replicas: 2, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "web", image: "registry.local/web:1" }] } } },
    });
    const apply = async (doc: object) => {
      const r = await runU7s(engine, ["kubectl", "apply", "-f", "-"], { env, input: JSON.stringify(doc) });
      expect(r.exitCode, show(r)).toBe(0);
    };
    const podsOf = async (app: string) => (await kubectlJson<{ items: PodJson[] }>(["get", "pods", "-n", "default", "-l", `app=${app}`])).items;

    beforeAll(() => cleanupNode(engine, nodeName));
    afterAll(() => cleanupNode(engine, nodeName));

    describe("u7s up (Flannel starts 8 s after it is scheduled)", () => {
      let up: CommandResult;
      beforeAll(async () => {
        await cleanupNode(engine, nodeName);
        up = await upWith({ defaultStartDelaySeconds: 1, startDelaySeconds: { flannel: 8 } }, []);
      });

      test("removes the control plane's taint (saying so) and returns only once the node is Ready, having said what it waited for", async () => {
        expect(up.exitCode, show(up)).toBe(0);
        expect(up.stderr).toContain(` ✓ Making the control plane schedulable (removing taint ${CP_TAINT}:NoSchedule)`);
        expect(up.stderr).toMatch(new RegExp(`waiting for the CNI from Flannel pod kube-flannel-\\S+: Pending`));
        expect(up.stderr).toContain(` ✓ Waiting for node ${nodeName} to be Ready (up to 5m)`);
        expect(await ready()).toBe("True");
        expect((await node()).spec?.taints ?? []).not.toContainEqual(expect.objectContaining({ key: CP_TAINT }));
        // Flannel started after the overwrite was set: the sync service left its slow start alone
        expect((await u7sOk(["exec", "--", "journalctl", "--no-pager", "-o", "cat", "-u", SYNC_UNIT])).stdout).not.toContain("restarted");
      });

      test("a plain Deployment's pods run on the one node", async () => {
        await apply(deployment("plain"));
        await eventually("the Deployment's pods Running", async () => {
          const pods = await podsOf("plain");
          return pods.length === 2 && pods.every((p) => p.status.phase === "Running" && p.spec.nodeName === nodeName) ? pods : undefined;
        });
        await u7sOk(["kubectl", "rollout", "status", "deployment/plain", "--timeout=60s"]);
      });

      test("smoke-test gets its StatefulSet rolled out (the client pod's DNS fetch needs a real cluster network)", async () => {
        const r = await u7s(["smoke-test", "--keep", "--timeout", "90", "--server-image", "registry.local/nginx:1", "--client-image", "registry.local/busybox:1"]);
        expect(r.stderr, show(r)).toContain(" ✓ Waiting for every node to be Ready");
        expect(r.stderr, show(r)).toContain(" ✓ Waiting for the StatefulSet to roll out");
        // as far as the doubles go: either the fetch passed, or it is the step that failed
        if (r.exitCode !== 0) expect(r.stderr, show(r)).toContain("error: Fetching each replica by its DNS name from a client pod failed");
        const pods = (await kubectlJson<{ items: PodJson[] }>(["get", "pods", "-n", "u7s-smoke-test", "-l", "app=u7s-smoke"])).items;
        expect(pods.map((p) => [p.metadata.name, p.status.phase]).sort()).toEqual([["smoke-0", "Running"], ["smoke-1", "Running"], ["smoke-2", "Running"]]);
        await u7s(["kubectl", "delete", "namespace", "u7s-smoke-test", "--wait=false"]);
      });

      test("when the overwrite changes, the sync service restarts the slow Flannel pod once, leaves its replacement alone while it starts, and the node ends Ready", async () => {
        const before = await flannelPods();
        expect(before).toHaveLength(1);
        const moved = "192.0.2.123";
        const host = (await node()).metadata.annotations?.["flannel.alpha.coreos.com/public-ip-overwrite"];
        const seen = new Set(before.map((p) => p.metadata.uid));
        await u7sOk(["kubectl", "label", "--overwrite", "node", nodeName, `usernetes/host-ip=${moved}`]);
        try {
          // watch the node's Flannel pods while the service (every 5 s) does its work: 8 s of start plus a few rounds
          const until = Date.now() + 30_000;
          while (Date.now() < until) {
            for (const p of await flannelPods()) seen.add(p.metadata.uid);
            const n = await node();
            if (seen.size > 1 && n.metadata.annotations?.["flannel.alpha.coreos.com/public-ip"] === moved && Date.now() > until - 12_000) break;
            await Bun.sleep(1000);
          }
          expect(seen.size).toBe(2); // the first pod and ONE replacement
          const journal = (await u7sOk(["exec", "--", "journalctl", "--no-pager", "-o", "cat", "-u", SYNC_UNIT])).stdout;
          expect(journal.split("\n").filter((l) => l.includes("Flannel pod") && l.includes("restarted"))).toHaveLength(1);
          expect(journal).toContain(`Flannel pod ${before[0]!.metadata.name} restarted (it started at`);
          await eventually("the replacement announces the moved IP and the node is Ready", async () => {
            const n = await node();
            return n.metadata.annotations?.["flannel.alpha.coreos.com/public-ip"] === moved && n.status?.conditions?.find((c) => c.type === "Ready")?.status === "True" ? n : undefined;
          });
        } finally {
          await u7s(["kubectl", "label", "--overwrite", "node", nodeName, `usernetes/host-ip=${host}`]);
        }
      });

      test("the node's addresses are exactly [ExternalIP = HOST_IP], as upstream's sync sets them", async () => {
        const hostIp = (JSON.parse((await u7sOk(["config", "--json"])).stdout) as Record<string, string>).HOST_IP;
        let last: unknown;
        await eventually("addresses back on the host IP", async () => {
          const x = await kubectlJson<{ status: { addresses: { type: string; address: string }[] } }>(["get", "node", nodeName]);
          last = x.status.addresses;
          const a = x.status.addresses;
          return a.length === 1 && a[0]!.type === "ExternalIP" && a[0]!.address === hostIp ? a : undefined;
        }).catch((err: Error) => {
          throw new Error(`${err.message}; last addresses ${JSON.stringify(last)}, HOST_IP ${hostIp}`);
        });
      });
    });

    test("up --control-plane-taint keeps the taint: a Deployment's pods stay Pending with the scheduler's message naming it, and smoke-test says so at once", async () => {
      await cleanupNode(engine, nodeName);
      const up = await upWith({ defaultStartDelaySeconds: 1 }, ["--control-plane-taint"]);
      expect(up.exitCode, show(up)).toBe(0);
      expect(up.stderr).toContain(` - Making the control plane schedulable (removing taint ${CP_TAINT}:NoSchedule): kept (--control-plane-taint)`);
      expect((await node()).spec?.taints).toContainEqual(expect.objectContaining({ key: CP_TAINT, effect: "NoSchedule" }));
      await apply(deployment("tainted"));
      const pods = await eventually("the Deployment's pods Unschedulable", async () => {
        const p = await podsOf("tainted");
        return p.length === 2 && p.every((x) => x.status.conditions?.some((c) => c.type === "PodScheduled" && c.reason === "Unschedulable")) ? p : undefined;
      });
      for (const p of pods) {
        expect(p.status.phase).toBe("Pending");
        expect(p.status.conditions?.find((c) => c.type === "PodScheduled")?.message).toContain(`untolerated taint {${CP_TAINT}: }`);
      }
      const t0 = Date.now();
      const smoke = await u7s(["smoke-test", "--timeout", "240", "--server-image", "registry.local/nginx:1", "--client-image", "registry.local/busybox:1"]);
      expect(smoke.exitCode, show(smoke)).toBe(1);
      expect(smoke.stderr).toContain(`no node can take pod smoke-0: 0/1 nodes are available: 1 node(s) had untolerated taint {${CP_TAINT}: }`);
      expect(smoke.stderr).toContain(`u7s kubectl taint nodes --all ${CP_TAINT}-`);
      expect(Date.now() - t0).toBeLessThan(200_000); // it did not wait out its 240 s
    });

    test("up fails (exit 1) with the node's conditions and the Flannel pod's events when the CNI never appears", async () => {
      await cleanupNode(engine, nodeName);
      const up = await upWith({ defaultStartDelaySeconds: 1, neverStart: ["flannel"] }, ["--wait", "20s"]);
      expect(up.exitCode, show(up)).toBe(1);
      expect(up.stderr).toContain(`error: node ${nodeName} did not become Ready: node ${nodeName} is not Ready after 20s: waiting for the CNI from Flannel pod kube-flannel-`);
      expect(up.stderr).toContain(`conditions of node ${nodeName}:`);
      expect(up.stderr).toMatch(/Ready=False KubeletNotReady: container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady/);
      expect(up.stderr).toMatch(/Flannel pod kube-flannel-\S+: Pending[^\n]*; last events:\n\s+Normal Scheduled: /);
      expect(up.stderr).toContain("hint: see `u7s logs -u kubelet`");
      // the kubeconfig was written before the wait: the user can look
      expect(up.stderr).toContain(" ✓ Writing the kubeconfig");
    });
  });
}
