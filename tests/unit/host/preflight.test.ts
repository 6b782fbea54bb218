import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DockerEngine } from "../../../lib/engine/docker.ts";
import type { EngineInfo } from "../../../lib/engine/engine.ts";
import { PodmanEngine } from "../../../lib/engine/podman.ts";
import { readFileSync } from "node:fs";
import type { NodeConfig } from "../../../lib/config/resolve.ts";
import { cgroupFindings, holdsAddress, hostIpFinding, lingerFinding, moduleFindings, restartFinding, rpFilterFinding } from "../../../lib/host/preflight.ts";
import { FakeEngineCli } from "../../fixtures/fake-engine-cli.ts";
import { FakeHost, HEALTHY_HOST_FILES, RecordingRunner, runCli } from "../../fixtures/fakes.ts";

const ALL = ["br_netfilter", "ip6_tables", "ip6table_nat", "ip_tables", "iptable_nat", "vxlan"];
const rootless = (cgroupVersion: 1 | 2 | undefined): EngineInfo => ({ rootless: true, cgroupVersion, cgroupDriver: undefined, version: "1" });

describe("kernel modules", () => {
  test("loaded (/proc/modules), present (/sys/module), built in (modules.builtin, kernel config): ok", () => {
    const host = new FakeHost({
      files: {
        "/proc/modules": "br_netfilter 32768 0 - Live 0x0\nip6_tables 32768 0 - Live 0x0\n",
        "/lib/modules/6.1.0-test/modules.builtin": "kernel/net/ipv6/netfilter/ip6table_nat.ko\n",
      },
      dirs: ["/sys/module/ip_tables"],
      kernelConfig: "CONFIG_IP_NF_NAT=y\nCONFIG_VXLAN=y\n",
    });
    expect(moduleFindings(host)).toEqual([{ level: "ok", message: `kernel modules: ${ALL.join(", ")}` }]);
  });

  test("a modular kernel without them: an error with the modprobe line", () => {
    const host = new FakeHost({ files: { "/proc/modules": "" }, kernelConfig: "CONFIG_VXLAN=m\n" });
    const [f] = moduleFindings(host);
    expect(f!.level).toBe("error");
    expect(f!.message).toContain("vxlan");
    expect(f!.hint).toContain(`sudo modprobe -a ${ALL.join(" ")}`);
  });

  test("a kernel without loadable modules and no config to read: a warning, not an error", () => {
    expect(moduleFindings(new FakeHost()).map((f) => f.level)).toEqual(["warn"]);
  });
});

describe("cgroups (fail only on what breaks)", () => {
  const controllers = "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/cgroup.controllers";
  test.each([
    ["v1 hybrid: boots, no limits", rootless(1), {}, ["warn"]],
    ["v2 with cpu memory pids", rootless(2), { [controllers]: "cpuset cpu io memory pids\n" }, ["ok"]],
    ["v2 without memory", rootless(2), { [controllers]: "cpu pids\n" }, ["error"]],
    ["v2 without pids", rootless(2), { [controllers]: "cpu memory\n" }, ["warn"]],
    ["v2, controllers unreadable", rootless(2), {}, ["warn"]],
  ] as const)("%s", (_name, info, files, levels) => {
    expect(cgroupFindings(info, new FakeHost({ files })).map((f) => f.level)).toEqual([...levels]);
  });
});

describe("linger and restart at boot", () => {
  test("linger", () => {
    expect(lingerFinding(rootless(2), new FakeHost({ dirs: ["/var/lib/systemd/linger/u7s", "/run/systemd/system"] })).level).toBe("ok");
    const off = lingerFinding(rootless(2), new FakeHost({ dirs: ["/run/systemd/system"] }));
    expect(off).toMatchObject({ level: "warn", hint: "sudo loginctl enable-linger u7s" });
    expect(lingerFinding(rootless(2), new FakeHost()).message).toContain("systemd is not running");
  });

  test("podman needs podman-restart.service; docker restarts its containers itself", async () => {
    const runner = new RecordingRunner().failOn(["systemctl"]);
    const host = new FakeHost({ dirs: ["/run/systemd/system"] });
    const podman = await restartFinding(new PodmanEngine("podman", runner.run), host, runner.run);
    expect(podman).toMatchObject({ level: "warn", hint: "systemctl --user enable podman-restart.service" });
    expect(await restartFinding(new DockerEngine("docker", runner.run), host, runner.run)).toBeUndefined();
    expect(await restartFinding(new PodmanEngine("podman", runner.run), new FakeHost(), runner.run)).toBeUndefined();
  });
});

describe("rp_filter in the engine's network namespace", () => {
  test.each([
    ["1", "error"],
    ["2", "ok"],
    ["0", "ok"],
    ["", "warn"],
  ] as const)("value %p -> %s", async (value, level) => {
    const runner = new RecordingRunner().on(["podman", "unshare"], { stdout: `${value}\n`, exitCode: value === "" ? 1 : 0 });
    const f = await rpFilterFinding(new PodmanEngine("podman", runner.run), rootless(2), runner.run, "/run/user/1000");
    expect(f.level).toBe(level);
    expect(runner.argvs[0]).toEqual(["podman", "unshare", "--rootless-netns", "cat", "/proc/sys/net/ipv4/conf/default/rp_filter"]);
  });
});

// `podman unshare --rootless-netns ip -o -4 addr show` recorded on host C (Debian 13's Podman 5.4.2, HOST_IP
// 10.213.0.3): with pasta's defaults, and with u7s's pasta_options (tests/setup-host-trixie.sh, README).
describe("HOST_IP in the engine's network namespace (pasta)", () => {
  const ipFixture = (name: string) => readFileSync(join(import.meta.dir, "../../fixtures/ip", name), "utf8");
  const config = { hostIp: "10.213.0.3", portKubelet: 10250 } as NodeConfig;
  const findingWith = async (stdout: string, engine: "podman" | "docker" = "podman") => {
    const runner = new RecordingRunner().on([engine], { stdout }).on(["nsenter"], { stdout });
    const driver = engine === "podman" ? new PodmanEngine("podman", runner.run) : new DockerEngine("docker", runner.run);
    return { f: await hostIpFinding(driver, rootless(1), runner.run, config, "/home/u", "/run/user/2213"), runner };
  };

  test("pasta's defaults (recorded): an error naming HOST_IP, the ports and u7s's drop-in", async () => {
    const { f, runner } = await findingWith(ipFixture("recorded-podman-5.4-pasta-rootless-netns-addr.txt"));
    expect(runner.argvs[0]).toEqual(["podman", "unshare", "--rootless-netns", "ip", "-o", "-4", "addr", "show"]);
    expect(f?.level).toBe("error");
    expect(f?.message).toStartWith("HOST_IP 10.213.0.3 is an address of the engine's own network namespace (pasta copies the host's): the node cannot reach HOST_IP:10250");
    expect(f?.hint).toContain("/home/u/.config/containers/containers.conf.d/u7s-pasta.conf");
  });

  test("pasta with an address of its own (recorded): ok", async () => {
    const { f } = await findingWith(ipFixture("recorded-podman-5.4-pasta-own-address-rootless-netns-addr.txt"));
    expect(f).toEqual({ level: "ok", message: "HOST_IP 10.213.0.3 is not an address of the engine's network namespace: the node reaches it" });
  });

  test("a namespace that cannot be entered or answered: no finding (rp_filter's check says so)", async () => {
    const runner = new RecordingRunner().failOn(["podman"]);
    expect(await hostIpFinding(new PodmanEngine("podman", runner.run), rootless(1), runner.run, config, "/home/u", undefined)).toBeUndefined();
  });

  test("holdsAddress matches whole addresses only", () => {
    const text = "2: eth0    inet 10.213.0.30/24 scope global eth0\\       valid_lft forever\n";
    expect(holdsAddress(text, "10.213.0.3")).toBe(false);
    expect(holdsAddress(text, "10.213.0.30")).toBe(true);
  });
});

describe("u7s check-preflight", () => {
  const engineRunner = (cli: FakeEngineCli) => new RecordingRunner().on("*", (argv, opts) => cli.runner(argv, opts));
  const host = { files: { "/proc/modules": ALL.map((m) => `${m} 1 0 - Live 0x0`).join("\n") } };

  test("warnings only: exit 0", async () => {
    const r = await runCli(["check-preflight"], { runner: engineRunner(new FakeEngineCli()), env: { CONTAINER_ENGINE: "docker" }, host });
    expect(r.stdout).toContain("✓ docker 20.10.24 is rootless");
    expect(r.stdout).toContain("! cgroup v1");
    expect(r.code).toBe(0);
  });

  test("a busy port and an unreachable engine are errors: exit 1, with hints", async () => {
    const busy = await runCli(["check-preflight"], { runner: engineRunner(new FakeEngineCli()), env: { CONTAINER_ENGINE: "docker" }, host: { ...host, busyPorts: [2379] } });
    expect(busy.code).toBe(1);
    expect(busy.stdout).toContain("✗ port 2379/tcp (PORT_ETCD) is already in use");
    const cli = new FakeEngineCli();
    cli.unreachable = true;
    const down = await runCli(["check-preflight", "--json"], { runner: engineRunner(cli), env: { CONTAINER_ENGINE: "docker" }, host });
    expect(down.code).toBe(1);
    const report = JSON.parse(down.stdout);
    expect(report.ok).toBe(false);
    expect(report.findings.at(-1)).toMatchObject({ level: "error", hint: expect.stringContaining("DOCKER_HOST") });
  });

  test("no engine: one error, exit 1, nothing run", async () => {
    const r = await runCli(["check-preflight"], { host: { binaries: [] } });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("no container engine found");
    expect(r.runner.calls).toEqual([]);
  });
});

// `u7s up` runs the host checks before it creates anything, as upstream's `make up` depends on
// check-preflight: against the fake engine CLI, an error leaves the engine untouched.
describe("u7s up runs the preflight first", () => {
  const IMAGE = "localhost/test-node:1";
  let home = "";
  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), "u7s-up-preflight-"));
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  /** upOn runs `u7s up --no-init --image IMAGE ARGS` on a fake engine of this flavour and host. */
  async function upOn(flavor: "docker" | "podman", hostFiles: Record<string, string>, args: string[] = [], tune: (cli: FakeEngineCli, runner: RecordingRunner) => void = () => {}, env: Record<string, string> = {}) {
    const cli = new FakeEngineCli(flavor);
    cli.images.add(IMAGE);
    const runner = new RecordingRunner().on("*", (argv, o) => cli.runner(argv, o));
    tune(cli, runner);
    const r = await runCli(["up", "--no-init", "--image", IMAGE, ...args], {
      runner,
      host: { dirs: ["/boot"], files: hostFiles },
      env: { CONTAINER_ENGINE: flavor, HOSTNAME: "host-a", HOME: home, ...env },
    });
    return { ...r, cli };
  }
  const strict = (cli: FakeEngineCli) => {
    cli.rpFilter = "1";
  };
  const nothingCreated = (cli: FakeEngineCli) => {
    expect(cli.mutations).toEqual([]);
    expect([cli.containers.size, cli.volumes.size, [...cli.networks.keys()]]).toEqual([0, 0, ["podman"]]);
  };

  test("a strict rp_filter in the engine's namespace: exit 1 naming it, with the fix, and nothing created", async () => {
    const r = await upOn("podman", HEALTHY_HOST_FILES, [], strict);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: preflight check failed: net.ipv4.conf.default.rp_filter is 1 (strict) in the engine's network namespace");
    expect(r.stderr).toContain("hint: set it to 2 (loose) on the host, `sudo sysctl -w net.ipv4.conf.default.rp_filter=2`");
    expect(r.stderr).toContain("or go on anyway with `u7s up --skip-preflight`");
    nothingCreated(r.cli);
    expect(r.runner.argvs).toContainEqual(["podman", "unshare", "--rootless-netns", "cat", "/proc/sys/net/ipv4/conf/default/rp_filter"]);
  });

  test("every failed check is named: the first as the error, the others below it, each with its fix", async () => {
    const modular = { ...HEALTHY_HOST_FILES, "/proc/modules": "br_netfilter 1 0 - Live 0x0\n" };
    const r = await upOn("podman", modular, [], strict);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: preflight check failed: kernel modules not loaded: ip6_tables, ip6table_nat, ip_tables, iptable_nat, vxlan\n");
    expect(r.stderr).toContain("  also: net.ipv4.conf.default.rp_filter is 1 (strict)");
    expect(r.stderr).toContain("  hint: set it to 2 (loose)");
    expect(r.stderr).toContain("hint: sudo modprobe -a ip6_tables ip6table_nat ip_tables iptable_nat vxlan;");
    nothingCreated(r.cli);
  });

  test("cgroup v2 without memory delegated: exit 1 with the Delegate= fix, nothing created", async () => {
    const files = { ...HEALTHY_HOST_FILES, "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/cgroup.controllers": "cpu pids\n" };
    const r = await upOn("podman", files);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: preflight check failed: cgroup v2 controllers not delegated to this user: memory");
    expect(r.stderr).toContain("Delegate=cpu cpuset io memory pids");
    nothingCreated(r.cli);
  });

  test("warnings (cgroup v1, no systemd for linger) are printed, also with -q, and up goes on", async () => {
    const { "/sys/fs/cgroup/cgroup.controllers": _v2, "/var/lib/systemd/linger/u7s": _linger, ...v1 } = HEALTHY_HOST_FILES;
    const r = await upOn("podman", v1, ["-q"]);
    expect(r.code).toBe(0);
    expect(r.cli.containers.size).toBe(1);
    expect(r.stderr).toBe(
      "warning: cgroup v1: the node boots where the engine's cgroups are delegated, but resource limits (CPU, memory) are not enforced\n" +
        "hint: boot the host with cgroup v2 (systemd.unified_cgroup_hierarchy=1) for resource limits\n" +
        "warning: systemd is not running on this host: no linger; keep the engine running yourself\n",
    );
  });

  test("no room in fs.inotify.max_user_instances for one more node: exit 1 naming the limit, nothing created", async () => {
    const full = { ...HEALTHY_HOST_FILES, "/proc/sys/fs/inotify/max_user_instances": "5\n" };
    const r = await upOn("podman", full, []);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: preflight check failed: fs.inotify.max_user_instances is 5");
    expect(r.cli.mutations).toEqual([]);
    const roomy = await upOn("podman", { ...full, "/proc/sys/fs/inotify/max_user_instances": "12\n" }, []);
    expect(roomy.code).toBe(0);
  });

  test("--skip-preflight: no check runs, the node is created despite a strict rp_filter", async () => {
    const r = await upOn("podman", {}, ["--skip-preflight"], strict);
    expect(r.code).toBe(0);
    expect(r.cli.containers.size).toBe(1);
    expect(r.stderr).not.toContain("warning:");
    expect(r.runner.argvs.filter((a) => a.includes("--rootless-netns"))).toEqual([]);
  });

  test("--dry-run: a failed check is a warning saying up would stop there; the commands are printed, none run", async () => {
    const r = await upOn("podman", HEALTHY_HOST_FILES, ["--dry-run"], strict);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("warning: the preflight check would stop `u7s up` here: net.ipv4.conf.default.rp_filter is 1 (strict)");
    expect(r.stdout).toContain("podman run --detach --name u7s-host-a");
    nothingCreated(r.cli);
    const skipped = await upOn("podman", HEALTHY_HOST_FILES, ["--dry-run", "--skip-preflight"], strict);
    expect(skipped.stderr).not.toContain("preflight");
    expect(skipped.runner.argvs.filter((a) => a[1] === "unshare")).toEqual([]);
  });

  test("the engine is asked once whether it is rootless (podman: unshare true; docker: info)", async () => {
    const podman = await upOn("podman", HEALTHY_HOST_FILES);
    expect(podman.code).toBe(0);
    expect(podman.runner.argvs.filter((a) => a.join(" ") === "podman unshare true")).toHaveLength(1);
    const docker = await upOn("docker", HEALTHY_HOST_FILES);
    expect(docker.code).toBe(0);
    expect(docker.runner.argvs.filter((a) => a[1] === "info")).toHaveLength(1);
  });

  test("docker: rp_filter is read in rootlesskit's namespaces (its child's pid under XDG_RUNTIME_DIR)", async () => {
    const runtimeDir = join(home, "run");
    mkdirSync(join(runtimeDir, "dockerd-rootless"), { recursive: true });
    writeFileSync(join(runtimeDir, "dockerd-rootless/child_pid"), `${process.pid}\n`);
    const nsenter = ["nsenter", "-U", "--preserve-credentials", "-n", "-t", String(process.pid), "cat", "/proc/sys/net/ipv4/conf/default/rp_filter"];
    const r = await upOn("docker", HEALTHY_HOST_FILES, [], (_cli, runner) => runner.on(["nsenter"], { stdout: "1\n" }), { XDG_RUNTIME_DIR: runtimeDir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("net.ipv4.conf.default.rp_filter is 1 (strict)");
    expect(r.runner.argvs).toContainEqual(nsenter);
    expect(r.cli.mutations).toEqual([]);
    const loose = await upOn("docker", HEALTHY_HOST_FILES, [], (_cli, runner) => runner.on(["nsenter"], { stdout: "2\n" }), { XDG_RUNTIME_DIR: runtimeDir });
    expect(loose.code).toBe(0);
    expect(loose.stderr).not.toContain("warning:");
  });

  test("`u7s up --help` names --skip-preflight", async () => {
    const r = await runCli(["up", "--help"]);
    expect(r.stdout).toContain("--skip-preflight");
    // The help text wraps at any word: compare with the line breaks as spaces.
    expect(r.stdout.replace(/\s+/g, " ")).toContain("an error stops `up` before anything is created");
  });
});
