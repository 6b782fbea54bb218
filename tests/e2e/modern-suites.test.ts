/**
 * The e2e suites of Debian 12's engines, in their essentials, on today's engines (issue 16): host C
 * (Debian 13's rootless Podman 5.4 on pasta, after `u7s init-host`) and host D (Debian 13's rootless
 * Docker 26.1 with RootlessKit 2.0 on slirp4netns), set up by tests/setup-host-trixie.sh.
 *   - node lifecycle and ports (node.test.ts, port.test.ts): published ports answer on the host, from
 *     host A and from the node itself at HOST_IP (what pasta breaks); Flannel's UDP port; `port add`/`rm`
 *     while the node runs; down/up and --recreate keep /var; the node, /var and a forwarder come back
 *     after an engine restart (D: dockerd; C: Podman has no daemon, so a stop as at a reboot);
 *   - tenants (tenants.test.ts): a second tenant beside the first, own ports, subnet, network;
 *   - lifecycle faults (lifecycle-faults.test.ts): a recreate that cannot start restores the node, a
 *     network removed behind u7s's back, volumes and networks u7s did not create kept by `down -v`;
 *   - airgap (airgap.test.ts): `image save` / `image load` / `up` on a host with no route out;
 *   - across generations (two-hosts.test.ts): a control plane on host A (Debian 12 Docker 20.10,
 *     tenant 24), a worker on host C (Podman 5.4, pasta, tenant 23): both ExternalIPs, Flannel's
 *     public-ip announcement carrying pod traffic both ways, the worker's `down -v` leaving the
 *     control plane intact.
 * Tenants 18 and 19 on C and D, 23 on C, 24 on A: no other test uses them. Skipped, saying why,
 * when the hosts are not set up.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PASTA_DROP_IN } from "../../lib/engine/podman.ts";
import { FLANNEL_IMAGES } from "../../lib/versions.ts";
import { AIRGAP_APP, AIRGAP_NODE_IMAGE, AIRGAP_TINY, buildAirgapImages } from "./airgap-fixture.ts";
import {
  copyBetweenHosts,
  describeResult,
  eventually,
  FLANNEL_VXLAN_SCRIPT,
  hostEngineCli,
  hostNodeLeftovers,
  inHostNetns,
  loadHostsEnv,
  removeHostNode,
  repoRoot,
  runCommand,
  runOnHost,
  runU7sOnHost,
  transferOverPods,
  type CommandResult,
  type HostsEnv,
  type TestHost,
} from "./harness.ts";
import { describeIf } from "./describe-if.ts";

const TIMEOUT_MS = 300_000;

const hosts: HostsEnv | undefined = (() => {
  try {
    return loadHostsEnv();
  } catch (e) {
    console.warn(`modern-suites: skipped: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
})();
if (hosts && !hosts.c) console.warn("modern-suites: host C skipped: tests/.work/hosts.env has no U7S_HOST_C_*: run `bash tests/setup-host-trixie.sh` (as root)");
if (hosts && !hosts.d) console.warn("modern-suites: host D skipped: tests/.work/hosts.env has no U7S_HOST_D_*: run `bash tests/setup-host-trixie.sh` (as root)");

/** Target is a test host this file runs the suites on. */
interface Target {
  readonly label: string;
  readonly host: TestHost | undefined;
}
const TARGETS: readonly Target[] = [
  { label: "host C (Debian 13 Podman 5.4, pasta)", host: hosts?.c },
  { label: "host D (Debian 13 Docker 26.1, RootlessKit 2.0)", host: hosts?.d },
];

/** greetArgv connects to ADDR:PORT over TCP and prints what the peer sends (6 s at most). */
function greetArgv(addr: string, port: number | string): string[] {
  return ["timeout", "6", "bash", "-c", 'exec 3<>"/dev/tcp/$0/$1" && cat <&3', addr, String(port)];
}
/** udpArgv sends stdin as one datagram to ADDR:PORT and prints the first reply (3 s at most). */
function udpArgv(addr: string, port: number | string): string[] {
  return ["timeout", "4", "socat", "-T", "3", "-", `UDP4:${addr}:${port}`];
}

/** Node is one u7s node of a test host: u7s with its tenant, and commands in it. */
class Node {
  constructor(
    readonly host: TestHost,
    readonly env: Record<string, string>,
    readonly name: string,
  ) {}

  /** of reads the node name of tenant env on host from `u7s config --json`. */
  static async of(host: TestHost, env: Record<string, string>): Promise<Node> {
    const r = await runU7sOnHost(host, ["config", "--json"], { env, timeoutMs: 60_000 });
    if (r.exitCode !== 0) throw new Error(`on host ${host.id}: ${describeResult(["u7s", "config", "--json"], r)}`);
    return new Node(host, env, String((JSON.parse(r.stdout) as Record<string, unknown>).NODE_NAME));
  }

  /** run runs u7s for this node on its host (extra settings on top of its own); it never throws on a non-zero exit. */
  run(args: readonly string[], extra: Record<string, string> = {}, input?: string): Promise<CommandResult> {
    return runU7sOnHost(this.host, args, { env: { ...this.env, ...extra }, input, timeoutMs: 240_000 });
  }

  /** ok is run, throwing with the command and its output unless it exits 0. */
  async ok(args: readonly string[], extra: Record<string, string> = {}, input?: string): Promise<CommandResult> {
    const r = await this.run(args, extra, input);
    if (r.exitCode !== 0) throw new Error(`on host ${this.host.id} (${this.host.engine}): ${describeResult(["u7s", ...args], r)}`);
    return r;
  }

  /** config is `u7s config --json` for this node, every value as a string. */
  async config(extra: Record<string, string> = {}): Promise<Record<string, string>> {
    const c = JSON.parse((await this.ok(["config", "--json"], extra)).stdout) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(c).map(([k, v]) => [k, String(v)]));
  }

  /** exec runs argv in the node; it never throws on a non-zero exit. */
  exec(argv: readonly string[]): Promise<CommandResult> {
    return runU7sOnHost(this.host, ["exec", "--", ...argv], { env: this.env, timeoutMs: 60_000 });
  }

  /** listen starts socat in the node on a port: TCP greets each connection with text, UDP answers each datagram with it. */
  async listen(port: number | string, text: string, proto: "tcp" | "udp" = "tcp"): Promise<void> {
    const from = proto === "tcp" ? `TCP-LISTEN:${port},fork,reuseaddr` : `UDP-RECVFROM:${port},fork`;
    await hostEngineCli(this.host, ["exec", "-d", this.name, "socat", from, `SYSTEM:echo ${text}`]);
    const ss = proto === "tcp" ? "-Hltn" : "-Hlun";
    await eventually(`${proto} listener on ${port} in ${this.name}`, async () => ((await this.exec(["ss", ss, `sport = :${port}`])).stdout.trim() ? true : undefined), 30);
  }

  /** systemdUp waits until systemd in the node is running (or degraded) and returns which. */
  async systemdUp(): Promise<string> {
    return eventually(`systemd running in ${this.name}`, async () => {
      const s = (await this.exec(["systemctl", "is-system-running"])).stdout.trim();
      return s === "running" || s === "degraded" ? s : undefined;
    }, 90);
  }

  /** startedAt is when the engine last started the node container (a restart changes it). */
  async startedAt(): Promise<string> {
    return (await hostEngineCli(this.host, ["inspect", "--format", "{{.State.StartedAt}}", this.name])).stdout.trim();
  }

  /** forwarders lists the node's port forwarder containers, sorted. */
  async forwarders(): Promise<string[]> {
    const r = await hostEngineCli(this.host, ["ps", "-a", "--filter", `label=io.u7s.node=${this.name}`, "--filter", "label=io.u7s.component=port-forwarder", "--format", "{{.Names}}"]);
    return r.stdout.split("\n").map((l) => l.trim()).filter(Boolean).sort();
  }

  /** remove takes the node away by name only (down -v, then whatever is left; forwarders too). */
  async remove(): Promise<void> {
    await removeHostNode(this.host, this.name, this.env);
    for (const f of await this.forwarders().catch(() => [])) await hostEngineCli(this.host, ["rm", "-f", f], { check: false });
  }
}

/** Observer is where a connection comes from: the host's own loopback, another host, or the node itself. */
type Observer = (argv: readonly string[]) => Promise<CommandResult>;
const fromHostNetns = (h: TestHost): Observer => (argv) => runCommand(inHostNetns(h, argv), { timeoutMs: 30_000 });
const fromNode = (n: Node): Observer => (argv) => n.exec(argv);

/** greets waits until a TCP connection from `from` to ADDR:PORT is greeted with text. */
async function greets(what: string, from: Observer, addr: string, port: number | string, text: string): Promise<void> {
  await eventually(`${text} from ${addr}:${port} (${what})`, async () => ((await from(greetArgv(addr, port))).stdout.trim() === text ? true : undefined), 30);
}
/** answers waits until a datagram from `from` to ADDR:PORT gets text back. */
async function answers(what: string, from: Observer, addr: string, port: number | string, text: string): Promise<void> {
  await eventually(`udp reply ${text} from ${addr}:${port} (${what})`, async () => {
    const r = await from(["sh", "-c", 'echo ping | "$@"', "udp", ...udpArgv(addr, port)]);
    return r.stdout.trim() === text ? true : undefined;
  }, 30);
}
/** closed tells whether no greeting comes from ADDR:PORT (refused, reset or silent). */
async function closed(from: Observer, addr: string, port: number | string): Promise<boolean> {
  return (await from(greetArgv(addr, port))).stdout.trim() === "";
}

/** restartDockerdOf restarts host D's rootless dockerd (tests/setup-host-trixie.sh's), as an upgrade or a reboot of the daemon would. */
async function restartDockerdOf(h: TestHost): Promise<void> {
  // SIGTERM to rootless dockerd (it stops its containers and exits; RootlessKit follows), then
  // tests/setup-host-trixie.sh starts it again on the network it ran on.
  const xdg = loadHostsEnv().raw[`U7S_HOST_${h.id.toUpperCase()}_XDG_RUNTIME_DIR`];
  const net = (await hostEngineCli(h, ["version", "--format", '{{range .Server.Components}}{{if eq .Name "rootlesskit"}}{{.Details.NetworkDriver}}{{end}}{{end}}'])).stdout.trim();
  const pid = Number((await runOnHost(h, ["cat", `${xdg}/docker.pid`])).stdout.trim());
  if (!(pid > 1)) throw new Error(`host ${h.id}: no dockerd pid in ${xdg}/docker.pid`);
  process.kill(pid, "SIGTERM");
  // RootlessKit holds its state directory's lock until it exits, after dockerd
  const uid = loadHostsEnv().raw[`U7S_HOST_${h.id.toUpperCase()}_UID`]!;
  await eventually(`host ${h.id}'s dockerd and RootlessKit gone`, async () => ((await runCommand(["pgrep", "-u", uid, "-x", "rootlesskit"])).exitCode === 1 ? true : undefined), 90);
  const argv = ["env", `U7S_HOST_D_NET=${net || "slirp4netns"}`, "bash", join(repoRoot, "tests/setup-host-trixie.sh")];
  const r = await runCommand(argv, { timeoutMs: 300_000 });
  if (r.exitCode !== 0) throw new Error(describeResult(argv, r));
}

/** dropIn: u7s's pasta drop-in of a host's user (written by `u7s init-host` on a Podman host). */
const dropIn = (h: TestHost) => `${h.home}/${PASTA_DROP_IN}`;

// On pasta a node reaches HOST_IP only with u7s's drop-in (modern-engines.test.ts shows why): every
// test here runs host C as `u7s init-host` leaves it; the drop-in goes when the file is done.
if (hosts?.c) {
  const c = hosts.c;
  beforeAll(async () => {
    const r = await runU7sOnHost(c, ["init-host"], { timeoutMs: 120_000 });
    if (r.exitCode !== 0) throw new Error(`on host c: ${describeResult(["u7s", "init-host"], r)}`);
  }, TIMEOUT_MS);
  afterAll(async () => {
    await runOnHost(c, ["rm", "-f", dropIn(c)]);
  }, TIMEOUT_MS);
}

/** P: the host ports `port add` publishes on hosts C and D (41811 tcp, 41812 udp, 41813 across the restart). */
const P = 41810;

for (const { label, host } of TARGETS) {
  describeIf(host, `${label} is not set up: run \`bash tests/setup-host-trixie.sh\` (as root)`)(`node lifecycle, ports and tenants on ${label}`, () => {
    const h = host!;
    const hostA = () => loadHostsEnv().a;
    let first: Node;
    let second: Node;
    let cfg: Record<string, string> = {};
    const image = () => loadHostsEnv().testImage;
    const up = (n: Node, extra: readonly string[] = [], env: Record<string, string> = {}) => n.ok(["up", "--no-init", "--image", image(), ...extra], env);

    beforeAll(async () => {
      first = await Node.of(h, { U7S_TENANT: "18" });
      second = await Node.of(h, { U7S_TENANT: "19" });
      for (const n of [first, second]) await n.remove();
      cfg = await first.config();
    }, TIMEOUT_MS);
    afterAll(async () => {
      for (const n of [first, second]) await n?.remove();
    }, TIMEOUT_MS);

    test("up boots systemd; the node's published ports answer on the host's loopback, from host A and from the node itself at HOST_IP; Flannel's UDP port answers host A", async () => {
      expect(cfg.HOST_IP).toBe(h.ip);
      const r = await up(first);
      expect(r.stderr).toContain(`node ${first.name} is up`);
      await first.systemdUp();
      expect((await first.exec(["hostname"])).stdout.trim()).toBe(first.name);
      await first.listen(cfg.PORT_KUBE_APISERVER!, "api-t18");
      await greets("host's loopback", fromHostNetns(h), "127.0.0.1", cfg.PORT_KUBE_APISERVER!, "api-t18");
      await greets("host A", fromHostNetns(hostA()), h.ip, cfg.PORT_KUBE_APISERVER!, "api-t18");
      await greets("the node itself", fromNode(first), h.ip, cfg.PORT_KUBE_APISERVER!, "api-t18");
      await first.listen(cfg.PORT_FLANNEL!, "vxlan-t18", "udp");
      await answers("host A", fromHostNetns(hostA()), h.ip, cfg.PORT_FLANNEL!, "vxlan-t18");
    }, TIMEOUT_MS);

    test("port add publishes a TCP and a UDP node port while the node runs (host A and the node reach them at HOST_IP), port rm closes one; the node is never restarted", async () => {
      const started = await first.startedAt();
      await first.ok(["exec", "--", "sh", "-c", "echo alive > /run/u7s-ms-marker"]); // /run is a tmpfs: a restart would lose it
      await first.listen(31011, "fwd-tcp");
      await first.listen(31012, "fwd-udp", "udp");
      expect(await closed(fromHostNetns(hostA()), h.ip, P + 1)).toBe(true);
      const add = await first.ok(["port", "add", `${P + 1}:31011`, `${P + 2}:31012/udp`]);
      expect(add.stderr).toContain(`published ${P + 1}/tcp -> node port 31011`);
      await greets("host A", fromHostNetns(hostA()), h.ip, P + 1, "fwd-tcp");
      await greets("the node itself", fromNode(first), h.ip, P + 1, "fwd-tcp");
      await answers("host A", fromHostNetns(hostA()), h.ip, P + 2, "fwd-udp");
      await first.ok(["port", "rm", String(P + 1)]);
      await eventually("port closed", async () => ((await closed(fromHostNetns(hostA()), h.ip, P + 1)) ? true : undefined), 30);
      expect(await first.forwarders()).toEqual([`${first.name}-port-${P + 2}-udp`]);
      expect(await first.startedAt()).toBe(started);
      expect((await first.exec(["cat", "/run/u7s-ms-marker"])).stdout.trim()).toBe("alive");
    }, TIMEOUT_MS);

    test("down keeps the three volumes and up brings /var back; --recreate applies a changed PORT_KUBELET (published) and keeps /var", async () => {
      await first.ok(["exec", "--", "sh", "-c", "echo kept > /var/u7s-ms-marker"]);
      await first.ok(["down"]);
      const left = await hostNodeLeftovers(h, first.name);
      expect(left.filter((l) => l.startsWith("volume ")).sort()).toEqual(["etc", "opt", "var"].map((v) => `volume ${first.name}-${v}`));
      expect(left).not.toContain(`container ${first.name}`);
      await up(first);
      expect((await first.exec(["cat", "/var/u7s-ms-marker"])).stdout.trim()).toBe("kept");
      const kubelet = String(Number(cfg.PORT_KUBELET) + 1000);
      await up(first, ["--recreate"], { PORT_KUBELET: kubelet });
      const s = JSON.parse((await first.ok(["status", "--json"], { PORT_KUBELET: kubelet })).stdout) as { node: { ports: unknown[] } };
      expect(s.node.ports).toContainEqual({ host: Number(kubelet), container: Number(kubelet), protocol: "tcp" });
      expect((await first.exec(["cat", "/var/u7s-ms-marker"])).stdout.trim()).toBe("kept");
      await up(first, ["--recreate"]);
    }, TIMEOUT_MS);

    test(h.engine === "docker" ? "after a restart of dockerd the node runs again with its /var, and a port add forwarder answers again" : "after the node is stopped (as at a reboot: Podman has no daemon), up starts it with its /var and a port add forwarder answers again", async () => {
      await first.ok(["port", "add", `${P + 3}:31013`]);
      await first.listen(31013, "before");
      await greets("host A", fromHostNetns(hostA()), h.ip, P + 3, "before");
      if (h.engine === "docker") {
        await restartDockerdOf(h);
        // restart policy "always": dockerd starts the node and its forwarders by itself
        await eventually("node running again", async () => {
          const s = JSON.parse((await first.run(["status", "--json"])).stdout || "{}") as { node?: { running?: boolean; systemd?: string } };
          return s.node?.running && ["running", "degraded"].includes(s.node.systemd ?? "") ? true : undefined;
        }, 120);
      } else {
        await hostEngineCli(h, ["stop", first.name], { timeoutMs: 120_000 });
        expect(await closed(fromHostNetns(hostA()), h.ip, P + 3)).toBe(true);
        await up(first);
      }
      expect((await first.exec(["cat", "/var/u7s-ms-marker"])).stdout.trim()).toBe("kept");
      await first.listen(31013, "after"); // the listener died with the node's processes
      await greets("host A", fromHostNetns(hostA()), h.ip, P + 3, "after");
      await greets("the node itself", fromNode(first), h.ip, P + 3, "after");
    }, TIMEOUT_MS);

    test("a second tenant beside the first: its own ports, subnet and network; ls lists both running; each API port answers from host A with its own node", async () => {
      await up(second);
      const c2 = await second.config();
      expect(c2.NODE_SUBNET).toStartWith("10.119.");
      const mine = (JSON.parse((await first.ok(["ls", "--json"])).stdout) as { name: string; tenant: number; state: string; ports: { host: number }[] }[])
        .filter((n) => n.name === first.name || n.name === second.name)
        .sort((x, y) => x.tenant - y.tenant);
      expect(mine.map((n) => [n.name, n.tenant, n.state])).toEqual([[first.name, 18, "running"], [second.name, 19, "running"]]);
      const ports = mine.flatMap((n) => n.ports.map((p) => p.host));
      expect(new Set(ports).size).toBe(ports.length);
      const status = JSON.parse((await second.ok(["status", "--json"])).stdout) as { node: { ip: string; network: string } };
      expect(status.node).toMatchObject({ ip: c2.NODE_IP, network: second.name });
      await second.listen(c2.PORT_KUBE_APISERVER!, "api-t19");
      await first.listen(cfg.PORT_KUBE_APISERVER!, "api-t18"); // the first one's listener went with the restart
      await greets("host A", fromHostNetns(hostA()), h.ip, c2.PORT_KUBE_APISERVER!, "api-t19");
      await greets("host A", fromHostNetns(hostA()), h.ip, cfg.PORT_KUBE_APISERVER!, "api-t18");
    }, TIMEOUT_MS);

    test("down -v of both leaves no container, volume, network or forwarder; the forwarded port is closed", async () => {
      expect((await first.forwarders()).length).toBeGreaterThan(0);
      for (const n of [first, second]) {
        await n.ok(["down", "-v"]);
        expect(await hostNodeLeftovers(h, n.name, `io.u7s.node=${n.name}`)).toEqual([]);
      }
      expect(await closed(fromHostNetns(hostA()), h.ip, P + 3)).toBe(true);
    }, TIMEOUT_MS);
  });

  describeIf(host, `${label} is not set up: run \`bash tests/setup-host-trixie.sh\` (as root)`)(`lifecycle faults on ${label}`, () => {
    const h = host!;
    let n: Node;
    /** BROKEN: the test image with an init that does not exist: the engine creates the container, then cannot start it. */
    const BROKEN = "localhost/u7s-e2e-ms-broken:1";
    const exists = async (kind: "volume" | "network", name: string) => (await hostEngineCli(h, [kind, "ls", "--format", "{{.Name}}"])).stdout.split("\n").includes(name);
    /** volumeFile reads a file from a volume with a throwaway container (the node need not run). */
    const volumeFile = async (volume: string, file: string) => {
      const r = await hostEngineCli(h, ["run", "--rm", "--entrypoint", "cat", "-v", `${volume}:/data:ro`, loadHostsEnv().testImage, `/data/${file}`], { check: false });
      return r.exitCode === 0 ? r.stdout.trim() : `(unreadable: ${r.stderr.trim()})`;
    };
    const cleanup = async () => {
      await n?.remove();
      await hostEngineCli(h, ["volume", "rm", "-f", `${n.name}-var-backup`], { check: false });
    };
    beforeAll(async () => {
      n = await Node.of(h, { U7S_TENANT: "19" });
      await cleanup();
      const dir = mkdtempSync("/tmp/u7s-e2e-ms-fault-");
      chmodSync(dir, 0o755);
      writeFileSync(join(dir, "Dockerfile"), `FROM ${loadHostsEnv().testImage}\nENTRYPOINT ["/nonexistent-init"]\n`, { mode: 0o644 });
      try {
        await hostEngineCli(h, ["build", "-t", BROKEN, dir], { timeoutMs: 180_000, env: { DOCKER_BUILDKIT: "0" } });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, TIMEOUT_MS);
    afterAll(async () => {
      await cleanup();
      await hostEngineCli(h, ["rmi", BROKEN], { check: false });
    }, TIMEOUT_MS);

    test("a recreate whose new container cannot start restores the old node with its /var; a network removed while the node was stopped is made again by up", async () => {
      await n.ok(["up", "--no-init", "--image", loadHostsEnv().testImage]);
      await n.ok(["exec", "--", "sh", "-c", "echo before-fault > /var/u7s-ms-fault"]);
      const status = async () => (JSON.parse((await n.ok(["status", "--json"])).stdout) as { node: { state: string; ip: string; image: string; ports: unknown[] } }).node;
      const before = await status();
      const r = await n.run(["up", "--no-init", "--image", BROKEN, "--recreate"], { PORT_KUBELET: "41899" });
      expect(r.exitCode, describeResult(["u7s", "up", "--recreate"], r)).toBe(1);
      expect(r.stderr).toContain("nonexistent-init");
      expect(r.stderr).toContain("the node was restored with its previous settings");
      expect(await status()).toMatchObject({ state: "running", ip: before.ip, image: before.image, ports: before.ports });
      expect((await n.exec(["cat", "/var/u7s-ms-fault"])).stdout.trim()).toBe("before-fault");

      await hostEngineCli(h, ["stop", n.name], { timeoutMs: 120_000 });
      // Docker removes a network its stopped containers still name; Podman only with -f, which removes them too
      await hostEngineCli(h, ["network", "rm", ...(h.engine === "podman" ? ["-f"] : []), n.name]);
      await n.ok(["up", "--no-init", "--image", loadHostsEnv().testImage]);
      expect((await n.exec(["cat", "/var/u7s-ms-fault"])).stdout.trim()).toBe("before-fault");
      const labels = await hostEngineCli(h, ["network", "inspect", "--format", "{{json .Labels}}", n.name]);
      expect(JSON.parse(labels.stdout)).toMatchObject({ "io.u7s.node": n.name });
    }, TIMEOUT_MS);

    test("down -v keeps a volume and a network u7s did not create, with their data, and names the command that would remove each", async () => {
      await n.ok(["down", "-v"]);
      for (const v of [`${n.name}-var`, `${n.name}-var-backup`]) {
        await hostEngineCli(h, ["volume", "create", v]);
        await hostEngineCli(h, ["run", "--rm", "--entrypoint", "sh", "-v", `${v}:/data`, loadHostsEnv().testImage, "-c", "echo precious > /data/f"]);
      }
      await hostEngineCli(h, ["network", "create", "--subnet", "10.219.99.0/24", n.name]);
      const r = await n.ok(["down", "-v"]);
      expect(r.stderr).toContain(`kept volume ${n.name}-var`);
      expect(r.stderr).toContain(`${h.engine} volume rm ${n.name}-var`);
      expect(r.stderr).toContain(`${h.engine} network rm ${n.name}`);
      expect(await volumeFile(`${n.name}-var`, "f")).toBe("precious");
      // Podman resolves volume names by prefix: NODE-var-backup must never stand for NODE-var
      expect(await volumeFile(`${n.name}-var-backup`, "f")).toBe("precious");
      expect(await exists("network", n.name)).toBe(true);
    }, TIMEOUT_MS);
  });

  describeIf(host, `${label} is not set up: run \`bash tests/setup-host-trixie.sh\` (as root)`)(`airgap on ${label} (no route out)`, () => {
    const h = host!;
    let n: Node;
    let work = "";
    const dataDir = () => `${h.home}/.local/share/u7s/${h.hostname}`;
    const removeImages = (refs: readonly string[]) => hostEngineCli(h, ["rmi", ...refs], { check: false });
    const engineImages = async () => (await hostEngineCli(h, ["images", "--format", "{{.Repository}}:{{.Tag}}"])).stdout.split("\n").filter(Boolean);
    const ctrImages = async () => (await n.ok(["exec", "--", "ctr", "--namespace", "k8s.io", "images", "ls", "--quiet"])).stdout.split("\n").filter(Boolean);
    const cleanup = async () => {
      await n?.remove();
      await removeImages([AIRGAP_NODE_IMAGE, ...AIRGAP_TINY]);
      // loaded images are the host's: other tests' new nodes on this host must not import them
      await runOnHost(h, ["rm", "-rf", dataDir()]);
    };
    beforeAll(async () => {
      n = await Node.of(h, { U7S_TENANT: "18" });
      await cleanup();
      work = mkdtempSync("/tmp/u7s-e2e-ms-airgap-");
      const uid = Number(loadHostsEnv().raw[`U7S_HOST_${h.id.toUpperCase()}_UID`]);
      chownSync(work, uid, uid);
      await buildAirgapImages(loadHostsEnv().testImage, (args, timeoutMs) => hostEngineCli(h, ["build", ...args], { timeoutMs, env: { DOCKER_BUILDKIT: "0" } }));
    }, 600_000);
    afterAll(async () => {
      await cleanup();
      rmSync(work, { recursive: true, force: true });
    }, TIMEOUT_MS);

    test("image save -> remove the images -> image load -> up: Flannel's and --include's images are in the node's containerd, nothing pulled", async () => {
      expect(loadHostsEnv().uplink).toBe(false); // the test hosts have no route out: nothing could be pulled
      const bundle = join(work, "bundle.tar");
      const saved = await n.ok(["image", "save", "-o", bundle, "--image", AIRGAP_NODE_IMAGE, "--include", AIRGAP_APP]);
      expect(saved.stderr).not.toContain("Pulling");
      const cluster = [...FLANNEL_IMAGES, AIRGAP_APP];
      await removeImages([AIRGAP_NODE_IMAGE, ...cluster]);
      expect((await engineImages()).filter((i) => [AIRGAP_NODE_IMAGE, ...cluster].includes(i))).toEqual([]);
      const loaded = await n.ok(["image", "load", "-i", bundle]);
      expect(loaded.stdout).toBe(`${AIRGAP_NODE_IMAGE}\n`);
      expect(await engineImages()).toContain(AIRGAP_NODE_IMAGE);
      const upped = await n.ok(["up", "--no-init", "--image", AIRGAP_NODE_IMAGE]);
      for (const ref of cluster) expect(upped.stderr).toContain(`Importing ${ref} into the node's containerd (k8s.io)`);
      expect(await ctrImages()).toEqual(expect.arrayContaining(cluster));
    }, 600_000);
  });
}

// ------------------------------------------------------------------ across generations: control plane on host A, worker on host C

/** OVERWRITE and PUBLIC_IP: u7s's sync sets the first, Flannel announces the second as its VXLAN endpoint (the doubles play flanneld). */
const OVERWRITE = "flannel.alpha.coreos.com/public-ip-overwrite";
const PUBLIC_IP = "flannel.alpha.coreos.com/public-ip";

interface ClusterNode {
  name: string;
  podCIDR: string | undefined;
  externalIp: string | undefined;
  overwrite: string | undefined;
  publicIp: string | undefined;
  ready: string | undefined;
}

describeIf(hosts?.c && hosts.clusterImage, "host C or the cluster test image on the hosts is not set up: run `npm run test:setup` (as root)")("a cluster across generations: control plane on host A (Debian 12 Docker 20.10, tenant 24), worker on host C (Debian 13 Podman 5.4, pasta, tenant 23)", () => {
  const a = () => loadHostsEnv().a;
  const c = () => loadHostsEnv().c!;
  let cp: Node;
  let worker: Node;
  const joinFile = (h: TestHost) => `${h.home}/u7s-join-ms-t24.json`;
  afterAll(async () => {
    for (const n of [worker, cp]) await n?.remove();
    for (const h of [a(), c()]) await runOnHost(h, ["rm", "-f", joinFile(h)]); // it holds a bootstrap token
  }, TIMEOUT_MS);

  const nodes = async (): Promise<ClusterNode[]> => {
    const list = JSON.parse((await cp.ok(["kubectl", "get", "nodes", "-o", "json"])).stdout) as {
      items: {
        metadata: { name: string; annotations?: Record<string, string> };
        spec?: { podCIDR?: string };
        status?: { addresses?: { type: string; address: string }[]; conditions?: { type: string; status: string }[] };
      }[];
    };
    return list.items
      .map((n) => ({
        name: n.metadata.name,
        podCIDR: n.spec?.podCIDR,
        externalIp: n.status?.addresses?.find((x) => x.type === "ExternalIP")?.address,
        overwrite: n.metadata.annotations?.[OVERWRITE],
        publicIp: n.metadata.annotations?.[PUBLIC_IP],
        ready: n.status?.conditions?.find((x) => x.type === "Ready")?.status,
      }))
      .sort((x, y) => x.name.localeCompare(y.name));
  };

  test("the worker joins with `up --join`; each node's ExternalIP, overwrite and Flannel public-ip are its host's address; pod TCP both ways over VXLAN to the announced addresses; the worker's down -v leaves the control plane Ready", async () => {
    const image = loadHostsEnv().clusterImage!;
    cp = await Node.of(a(), { U7S_TENANT: "24" });
    const cpConfig = await cp.config();
    // one Flannel port across the cluster (a join checks it): the control plane's
    worker = await Node.of(c(), { U7S_TENANT: "23", PORT_FLANNEL: cpConfig.PORT_FLANNEL! });
    for (const n of [cp, worker]) await n.remove();
    await cp.ok(["up", "--image", image]);
    await cp.ok(["join-command", "-o", joinFile(a())]);
    await copyBetweenHosts(a(), joinFile(a()), c(), joinFile(c()));
    // --debug: kubeadm's own output in the log when the join fails
    await worker.ok(["up", "--debug", "--image", image, "--join", joinFile(c())]);
    const resolved = await worker.ok(["exec", "--", "getent", "ahostsv4", cp.name]);
    expect(resolved.stdout.split(/\s+/)[0]).toBe(a().ip);

    const want = [
      { name: cp.name, ip: a().ip },
      { name: worker.name, ip: c().ip },
    ].sort((x, y) => x.name.localeCompare(y.name));
    const view = (ns: ClusterNode[]) => ns.map((n) => ({ name: n.name, externalIp: n.externalIp, overwrite: n.overwrite, publicIp: n.publicIp, ready: n.ready }));
    const wanted = want.map((w) => ({ name: w.name, externalIp: w.ip, overwrite: w.ip, publicIp: w.ip, ready: "True" }));
    let seen: ClusterNode[] = [];
    await eventually("both nodes Ready with their host's address as ExternalIP, overwrite and Flannel public-ip", async () => {
      seen = await nodes();
      return JSON.stringify(view(seen)) === JSON.stringify(wanted) ? true : undefined;
    }, 120).catch(() => undefined);
    expect(view(seen)).toEqual(wanted);

    // flannel.1 in each node as flanneld would make it from the cluster's view: the node's podCIDR,
    // and the peer's podCIDR and announced public-ip (the doubles run no flanneld: the script plays it)
    const byName = new Map(seen.map((n) => [n.name, n]));
    const side = async (n: Node, i: number) => {
      const c0 = await n.config();
      const cidr = byName.get(n.name)?.podCIDR;
      if (!cidr) throw new Error(`node ${n.name} has no podCIDR: ${JSON.stringify(seen)}`);
      return { n, nodeIp: c0.NODE_IP!, port: c0.PORT_FLANNEL!, pod: cidr.replace(/\/\d+$/, ""), mac: `02:75:37:00:24:0${i + 1}`, publicIp: byName.get(n.name)!.publicIp! };
    };
    const [sa, sc] = [await side(cp, 0), await side(worker, 1)];
    for (const [self, peer] of [[sa, sc], [sc, sa]] as const) {
      await self.n.ok(["exec", "--", "sh", "-c", FLANNEL_VXLAN_SCRIPT, "flannel-vxlan", self.nodeIp, self.port, self.pod, self.mac, peer.pod, peer.mac, peer.publicIp]);
    }
    for (const [from, to] of [[sa, sc], [sc, sa]] as const) {
      const end = (x: typeof sa) => ({ host: x.n.host, env: x.n.env, podAddr: x.pod });
      const { sent, received } = await transferOverPods(end(from), end(to), 5024, 2097152);
      expect(sent).toMatch(/^[0-9a-f]{64}$/);
      expect({ from: from.n.host.id, sum: received }).toEqual({ from: from.n.host.id, sum: sent });
    }

    await worker.ok(["down", "-v"]);
    expect(await hostNodeLeftovers(c(), worker.name, `io.u7s.node=${worker.name}`)).toEqual([]);
    const cpNow = (await nodes()).find((n) => n.name === cp.name);
    expect(cpNow).toMatchObject({ externalIp: a().ip, ready: "True" });
    const s = JSON.parse((await cp.ok(["status", "--json"])).stdout) as { node: { running: boolean } };
    expect(s.node.running).toBe(true);
  }, TIMEOUT_MS);
});
