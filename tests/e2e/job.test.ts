/**
 * A cluster for the length of a batch job (issue 18) on test hosts E and F (tests/setup-job-hosts.sh):
 * one user (u7sjob) and one home on both, node-local /tmp each, no engine running, no XDG_RUNTIME_DIR.
 * Each host runs the per-node line of examples/slurm.sbatch (`u7s up --job --image-archive ...`) as a
 * background process with Slurm's variables set, as `srun` would; u7s starts a private engine on each
 * host, loads the cluster test image (API and kubeadm doubles) from the archive, and the worker joins
 * the control plane across the hosts. Signals go to that process itself (the host's exec wrapper
 * becomes it), as Slurm's would. What must be left afterwards: nothing of the job on either host (no
 * engine process, no scratch directory) and the shared home as it was.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { jobTenant } from "../../lib/job/files.ts";
import { FLANNEL_VXLAN_SCRIPT, HarnessError, clusterTools, eventually, hostsEnvFile, loadHostsEnv, repoRoot, runCommand, u7sBinary, type CommandResult } from "./harness.ts";
import { describeIf } from "./describe-if.ts";

const TIMEOUT_MS = 300_000;

/** JobHost is test host E or F as hosts.env describes it. */
interface JobHost {
  id: "e" | "f";
  hostname: string;
  ip: string;
  exec: string;
  scratch: string;
}

let hosts: { e: JobHost; f: JobHost };
let home: string;
let uid: string;
let bin: string;
let archive: string;
/** kubectl: a copy of the test kubectl where the job hosts see it (U7S_JOB_BIN_DIR). */
let kubectl: string;
let perNode: string[];

/** perNodeLine reads the per-node `u7s up --job ...` arguments from examples/slurm.sbatch, so the example is what runs. */
function perNodeLine(): string[] {
  const text = readFileSync(join(repoRoot, "examples/slurm.sbatch"), "utf8");
  const line = text.split("\n").find((l) => /^srun .*"\$U7S" up --job/.test(l));
  if (!line) throw new HarnessError("examples/slurm.sbatch has no `srun ... \"$U7S\" up --job ...` line");
  const args = line.replace(/^.*"\$U7S" /, "").replace(/\s*&\s*$/, "");
  return args.split(/\s+/).map((a) => (a === '"$IMAGES"' ? archive : a));
}

/** raw: hosts.env, when the test hosts are set up; hosts E and F come from tests/setup-job-hosts.sh. */
const raw: Record<string, string | undefined> = existsSync(hostsEnvFile) ? loadHostsEnv().raw : {};
const hostsReady = Boolean(raw.U7S_HOST_E_EXEC && raw.U7S_HOST_F_EXEC && raw.U7S_JOB_CLUSTER_IMAGE_ARCHIVE);

beforeAll(() => {
  if (!hostsReady) return;
  const need = (k: string): string => {
    const v = raw[k];
    if (!v) throw new HarnessError(`${hostsEnvFile} has no ${k}: run \`bash tests/setup-job-hosts.sh\` (as root)`);
    return v;
  };
  const host = (id: "e" | "f"): JobHost => {
    const p = `U7S_HOST_${id.toUpperCase()}_`;
    return { id, hostname: need(`${p}HOSTNAME`), ip: need(`${p}IP`), exec: need(`${p}EXEC`), scratch: need(`${p}SCRATCH`) };
  };
  hosts = { e: host("e"), f: host("f") };
  home = need("U7S_JOB_HOME");
  uid = need("U7S_JOB_UID");
  archive = need("U7S_JOB_CLUSTER_IMAGE_ARCHIVE");
  // the hosts' /tmp is their own: the binary goes where both see it
  bin = join(need("U7S_JOB_BIN_DIR"), "u7s-e2e-job");
  copyFileSync(u7sBinary(), bin);
  chmodSync(bin, 0o755);
  // kubectl too: a checkout under /tmp (CI's clone) is not there on the hosts
  kubectl = join(need("U7S_JOB_BIN_DIR"), "kubectl-e2e-job");
  copyFileSync(clusterTools().kubectl, kubectl);
  chmodSync(kubectl, 0o755);
  perNode = perNodeLine();
});

/** onHost runs a command on a job host as the job user; it never throws on a non-zero exit. */
function onHost(h: JobHost, argv: readonly string[], timeoutMs = 120_000): Promise<CommandResult> {
  return runCommand([h.exec, ...argv], { timeoutMs });
}

/** slurmEnv is what srun gives each task of job ID on hosts E and F. */
function slurmEnv(jobId: string): string[] {
  return [`SLURM_JOB_ID=${jobId}`, `SLURM_JOB_NODELIST=${hosts.e.hostname},${hosts.f.hostname}`, "SLURM_JOB_NUM_NODES=2"];
}

/** Task is one host's `u7s up --job` running in the background. */
interface Task {
  host: JobHost;
  proc: ReturnType<typeof Bun.spawn>;
  stdout: string;
  stderr: string;
  exited: Promise<number>;
}

/** startTask runs `u7s ARGS` on a host in the background (the exec wrapper's pid becomes u7s's: signals reach it). */
function startTask(h: JobHost, jobId: string, args: readonly string[]): Task {
  const proc = Bun.spawn([h.exec, "env", ...slurmEnv(jobId), bin, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const task: Task = { host: h, proc, stdout: "", stderr: "", exited: proc.exited };
  const pump = async (s: ReadableStream<Uint8Array>, k: "stdout" | "stderr") => {
    const d = new TextDecoder();
    for await (const c of s) task[k] += d.decode(c, { stream: true });
  };
  void pump(proc.stdout as ReadableStream<Uint8Array>, "stdout");
  void pump(proc.stderr as ReadableStream<Uint8Array>, "stderr");
  return task;
}

const show = (t: Task) => `--- host ${t.host.id} stdout\n${t.stdout}\n--- host ${t.host.id} stderr\n${t.stderr}`;

/** untilReady waits until a task printed its export line (its node is Ready), failing at once, with its output, if it exits. */
async function untilReady(t: Task, seconds: number): Promise<void> {
  let code: number | undefined;
  void t.exited.then((c) => (code = c));
  for (const deadline = Date.now() + seconds * 1000; Date.now() < deadline; await Bun.sleep(500)) {
    if (t.stdout.includes("export KUBECONFIG=")) return;
    if (code !== undefined) throw new Error(`host ${t.host.id}: u7s exited ${code} before its node was Ready\n${show(t)}`);
  }
  throw new Error(`host ${t.host.id}: not Ready within ${seconds}s\n${show(t)}`);
}

/** exitOf waits (bounded) for a task to end and returns its exit code. */
async function exitOf(t: Task, seconds: number): Promise<number> {
  const code = await Promise.race([t.exited, Bun.sleep(seconds * 1000).then(() => undefined)]);
  if (code === undefined) throw new Error(`host ${t.host.id}: u7s did not exit within ${seconds}s\n${show(t)}`);
  return code;
}

/** scratchOf is a host's scratch directory for a job (lib/job/files.ts scratchDir). */
const scratchOf = (h: JobHost, jobId: string) => `${h.scratch}/u7s-${uid}-${h.hostname}-${jobId}`;
const jobDirOf = (jobId: string) => `${home}/.local/state/u7s/jobs/${jobId}`;

/** leftovers lists what of a job is left on a host: its scratch directory, processes that name it. */
async function leftovers(h: JobHost, jobId: string): Promise<string[]> {
  const scratch = scratchOf(h, jobId);
  const out: string[] = [];
  const ls = await onHost(h, ["ls", "-A", h.scratch]);
  if (ls.stdout.split("\n").includes(scratch.split("/").pop()!)) out.push(`directory ${scratch}`);
  // engine processes (rootlesskit, dockerd, containerd, slirp4netns, shims, the node's) all name the scratch directory or run below it
  const ps = await runCommand(["ps", "-u", uid, "-o", "pid=,args="]);
  for (const l of ps.stdout.split("\n")) if (l.includes(scratch)) out.push(`process ${l.trim()}`);
  return out;
}

/** homeTree lists the shared home's paths, without what other tests on these hosts keep there (Podman's default storage, Bun's cache). */
function homeTree(): string[] {
  return readdirSync(home, { recursive: true })
    .map(String)
    .filter((p) => !/^(\.local\/share\/containers|\.bun|\.cache)(\/|$)/.test(p))
    .sort();
}

/** engineEnv is the private engine's environment of a job's host (its state file in scratch, lib/engine/private.ts). */
async function engineEnv(h: JobHost, jobId: string): Promise<string[]> {
  const r = await onHost(h, ["cat", `${scratchOf(h, jobId)}/engine.json`]);
  if (r.exitCode !== 0) throw new Error(`host ${h.id}: no engine state: ${r.stderr}`);
  return Object.entries((JSON.parse(r.stdout) as { env: Record<string, string> }).env).map(([k, v]) => `${k}=${v}`);
}

/** inNode runs a command in the job's node on a host through its private engine. */
async function inNode(h: JobHost, jobId: string, node: string, argv: readonly string[], timeoutMs = 60_000): Promise<CommandResult> {
  const r = await onHost(h, ["env", ...(await engineEnv(h, jobId)), "docker", "exec", node, ...argv], timeoutMs);
  if (r.exitCode !== 0) throw new Error(`host ${h.id}: docker exec ${node} ${argv.join(" ")}: exit ${r.exitCode}\n${r.stderr}`);
  return r;
}

/** jobState is a host's job.json in scratch (lib/job/files.ts JobState). */
async function jobState(h: JobHost, jobId: string): Promise<{ nodeName: string; tenant: number }> {
  const r = await onHost(h, ["cat", `${scratchOf(h, jobId)}/job.json`]);
  if (r.exitCode !== 0) throw new Error(`host ${h.id}: no job state: ${r.stderr}`);
  return JSON.parse(r.stdout) as { nodeName: string; tenant: number };
}

/** jobIds are unique per run: a leftover of an earlier run never meets this one. */
const runTag = `${Date.now() % 1_000_000}`;
const jobIds: string[] = [];
const newJob = (name: string) => {
  const id = `${name}${runTag}`;
  jobIds.push(id);
  return id;
};

afterAll(async () => {
  if (!hostsReady) return;
  // whatever a failed test left: `u7s down --job` on both hosts, for every job of this run
  for (const id of jobIds) for (const h of [hosts.e, hosts.f]) await onHost(h, ["env", ...slurmEnv(id), bin, "down", "--job"], 120_000);
}, TIMEOUT_MS);

describeIf(hostsReady, "hosts E and F are not set up (tests/.work/hosts.env has no U7S_HOST_E_EXEC, U7S_HOST_F_EXEC or U7S_JOB_CLUSTER_IMAGE_ARCHIVE): run `bash tests/setup-job-hosts.sh` (as root)")("u7s up --job on two hosts of a batch job", () => {
  test(
    "a worker started 20 s before the control plane joins; both nodes Ready; VXLAN carries TCP both ways; SIGTERM leaves nothing on either host, the home as it was",
    async () => {
      const jobId = newJob("e2e");
      const before = homeTree();
      const worker = startTask(hosts.f, jobId, perNode);
      await Bun.sleep(20_000);
      expect(worker.stderr, show(worker)).toContain(`[${hosts.f.hostname}] waiting for the control plane ${hosts.e.hostname}`);
      expect(await Promise.race([worker.exited, Bun.sleep(0).then(() => "running")])).toBe("running");
      const cp = startTask(hosts.e, jobId, perNode);
      const kubeconfig = `${jobDirOf(jobId)}/kubeconfig`;
      for (const t of [cp, worker]) await untilReady(t, 240);
      for (const t of [cp, worker]) {
        expect(t.stdout).toBe(`export KUBECONFIG=${kubeconfig}\n`);
        expect(t.stderr.split("\n").filter((l) => l !== "").every((l) => l.startsWith(`[${t.host.hostname}] `)), show(t)).toBe(true);
        // the VXLAN relay (on by default) runs for the job's node, its host side a detached process of the job's
        expect(t.stderr, show(t)).toContain(`VXLAN relay: ${t.host.ip}:`);
        expect(t.stderr, show(t)).toContain("(a detached process)");
      }
      // the batch script's wait (examples/slurm.sbatch): on any host, once both nodes are Ready
      const waited = await onHost(hosts.f, ["env", ...slurmEnv(jobId), bin, "kubeconfig", "--job", "--nodes", "2", "--timeout", "60"]);
      expect(waited.exitCode, waited.stderr).toBe(0);
      expect(waited.stdout).toBe(`export KUBECONFIG=${kubeconfig}\n`);
      // every host can use the kubeconfig (it points at the control plane's HOST_IP); the cluster has both nodes, Ready
      const [e, f] = [await jobState(hosts.e, jobId), await jobState(hosts.f, jobId)];
      const want = [
        { name: e.nodeName, ready: "True", ip: hosts.e.ip },
        { name: f.nodeName, ready: "True", ip: hosts.f.ip },
      ];
      // the control plane's sync service gives a joined node its ExternalIP within seconds of the join (as in two-hosts.test.ts)
      let seen: unknown;
      for (const deadline = Date.now() + 60_000; Date.now() < deadline; await Bun.sleep(2_000)) {
        const nodes = await onHost(hosts.f, ["env", `KUBECONFIG=${kubeconfig}`, `KUBECACHEDIR=${scratchOf(hosts.f, jobId)}/kube-cache`, kubectl, "get", "nodes", "-o", "json"]);
        expect(nodes.exitCode, nodes.stderr).toBe(0);
        seen = (JSON.parse(nodes.stdout) as { items: { metadata: { name: string }; status: { conditions: { type: string; status: string }[]; addresses: { type: string; address: string }[] } }[] }).items
          .map((n) => ({ name: n.metadata.name, ready: n.status.conditions.find((c) => c.type === "Ready")?.status, ip: n.status.addresses.find((a) => a.type === "ExternalIP")?.address }))
          .sort((a, b) => a.name.localeCompare(b.name));
        if (JSON.stringify(seen) === JSON.stringify(want)) break;
      }
      expect(seen).toEqual(want);

      // The VXLAN path between the two nodes through each host's published PORT_FLANNEL (the private engines' port forwarding).
      const config = async (h: JobHost, t: number): Promise<Record<string, string>> => JSON.parse((await onHost(h, ["env", `U7S_TENANT=${t}`, "CONTAINER_ENGINE=docker", bin, "config", "--json"])).stdout) as Record<string, string>;
      // NODE_IP: the node's own address (the job derives NODE_SUBNET from the host's place in the node list)
      const nodeIp = async (h: JobHost, node: string) => (await inNode(h, jobId, node, ["sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1"])).stdout.trim();
      const sides = [
        { h: hosts.e, node: e.nodeName, c: { ...(await config(hosts.e, e.tenant)), NODE_IP: await nodeIp(hosts.e, e.nodeName) } as Record<string, string>, pod: "10.244.0.0", mac: "02:75:37:00:00:01" },
        { h: hosts.f, node: f.nodeName, c: { ...(await config(hosts.f, f.tenant)), NODE_IP: await nodeIp(hosts.f, f.nodeName) } as Record<string, string>, pod: "10.244.1.0", mac: "02:75:37:00:00:02" },
      ];
      // the hosts' places in SLURM_JOB_NODELIST: host E 0, host F 1
      expect(sides.map((x) => x.c.NODE_IP)).toEqual([`10.${100 + e.tenant}.0.100`, `10.${100 + f.tenant}.1.100`]);
      for (const [self, peer] of [[sides[0]!, sides[1]!], [sides[1]!, sides[0]!]] as const) {
        await inNode(self.h, jobId, self.node, ["env", "NOFIX=0", "sh", "-c", FLANNEL_VXLAN_SCRIPT, "flannel-vxlan", self.c.NODE_IP!, self.c.PORT_FLANNEL!, self.pod, self.mac, peer.pod, peer.mac, peer.h.ip]);
      }
      for (const [from, to] of [[sides[0]!, sides[1]!], [sides[1]!, sides[0]!]] as const) {
        const word = `u7s-job-${from.h.id}-to-${to.h.id}-${runTag}`;
        const receiver = inNode(to.h, jobId, to.node, ["timeout", "40", "socat", "-u", `TCP-LISTEN:5001,bind=${to.pod},reuseaddr`, "-"]);
        await inNode(from.h, jobId, from.node, ["sh", "-c", `echo ${word} | timeout 30 socat -u - TCP:${to.pod}:5001,bind=${from.pod},connect-timeout=5,retry=20,interval=0.5`]);
        expect((await receiver).stdout.trim()).toBe(word);
      }

      // The job ends: SIGTERM to both, as Slurm sends it; within 30 s nothing of the job is left.
      const t0 = Date.now();
      cp.proc.kill("SIGTERM");
      worker.proc.kill("SIGTERM");
      const codes = [await exitOf(cp, 30), await exitOf(worker, 30)];
      expect(Date.now() - t0).toBeLessThan(30_000);
      expect(codes, `${show(cp)}\n${show(worker)}`).toEqual([0, 0]);
      for (const h of [hosts.e, hosts.f]) expect({ host: h.id, left: await leftovers(h, jobId) }).toEqual({ host: h.id, left: [] });
      expect(existsSync(jobDirOf(jobId))).toBe(false);
      expect(homeTree()).toEqual(before);
    },
    TIMEOUT_MS,
  );

  test(
    "a control plane that fails makes the waiting worker exit non-zero with its reason; `down --job` there removes its failure marker",
    async () => {
      const jobId = newJob("fail");
      const before = homeTree();
      const worker = startTask(hosts.f, jobId, perNode);
      await eventually("the worker waits for the join file", async () => (worker.stderr.includes("waiting for the control plane") ? true : undefined), 120);
      // the control plane is told to run an image that is not there: its `up` fails after the engine started
      const cp = startTask(hosts.e, jobId, [...perNode.filter((a, i, all) => a !== "--image-archive" && all[i - 1] !== "--image-archive"), "--image", "localhost/u7s-no-such-node:v0"]);
      expect(await exitOf(cp, 120), show(cp)).toBe(1);
      expect(cp.stderr).toContain("localhost/u7s-no-such-node:v0");
      expect(await exitOf(worker, 30), show(worker)).toBe(1);
      expect(worker.stderr).toMatch(new RegExp(`\\[${hosts.f.hostname}\\] error: the control plane ${hosts.e.hostname} failed: .*localhost/u7s-no-such-node:v0`));
      for (const h of [hosts.e, hosts.f]) expect({ host: h.id, left: await leftovers(h, jobId) }).toEqual({ host: h.id, left: [] });
      // the marker stays for the workers until the job's cleanup (the example's last step, an epilog)
      expect(existsSync(`${jobDirOf(jobId)}/failed.json`)).toBe(true);
      const down = await onHost(hosts.e, ["env", ...slurmEnv(jobId), bin, "down", "--job"]);
      expect(down.exitCode, down.stderr).toBe(0);
      expect(homeTree()).toEqual(before);
    },
    TIMEOUT_MS,
  );

  test(
    "after a SIGKILL of the foreground process, `u7s down --job` removes the node, the private engine, the scratch directory and the job's files; another job of the user on the same host is untouched",
    async () => {
      const jobId = newJob("kill");
      const otherId = newJob("other");
      const before = homeTree();
      // two jobs of one host each (the control plane alone), at once on host E; the other job's tenant differs for sure
      const cp = startTask(hosts.e, jobId, [...perNode, "--control-plane", hosts.e.hostname]);
      const other = startTask(hosts.e, otherId, [...perNode, "--control-plane", hosts.e.hostname, "--tenant", String((jobTenant(jobId) % 99) + 1)]);
      await untilReady(cp, 240);
      await untilReady(other, 240);
      cp.proc.kill("SIGKILL");
      await exitOf(cp, 10);
      const left = await leftovers(hosts.e, jobId);
      expect(left.some((l) => l.startsWith("process ") && l.includes("dockerd")), left.join("\n")).toBe(true);
      expect(existsSync(jobDirOf(jobId))).toBe(true);
      const down = await onHost(hosts.e, ["env", ...slurmEnv(jobId), bin, "down", "--job"]);
      expect(down.exitCode, down.stderr).toBe(0);
      expect(down.stderr).toContain("Removing node");
      expect(await leftovers(hosts.e, jobId)).toEqual([]);
      expect(existsSync(jobDirOf(jobId))).toBe(false);
      // and again: nothing to do
      const again = await onHost(hosts.e, ["env", ...slurmEnv(jobId), bin, "down", "--job"]);
      expect(again.exitCode).toBe(0);
      expect(again.stderr).toContain("nothing of job");

      // the other job: its process, engine, files and node are all still there, and its cluster answers
      expect(await Promise.race([other.exited, Bun.sleep(0).then(() => "running")])).toBe("running");
      const otherLeft = await leftovers(hosts.e, otherId);
      expect(otherLeft.some((l) => l.includes("dockerd")), otherLeft.join("\n")).toBe(true);
      expect(existsSync(`${jobDirOf(otherId)}/kubeconfig`)).toBe(true);
      const nodes = await onHost(hosts.e, ["env", `KUBECONFIG=${jobDirOf(otherId)}/kubeconfig`, `KUBECACHEDIR=${scratchOf(hosts.e, otherId)}/kube-cache`, kubectl, "get", "nodes", "-o", "name"]);
      expect({ code: nodes.exitCode, out: nodes.stdout.trim() }).toEqual({ code: 0, out: `node/${(await jobState(hosts.e, otherId)).nodeName}` });
      other.proc.kill("SIGTERM");
      expect(await exitOf(other, 30), show(other)).toBe(0);
      expect(await leftovers(hosts.e, otherId)).toEqual([]);
      expect(homeTree()).toEqual(before);
    },
    TIMEOUT_MS,
  );
});
