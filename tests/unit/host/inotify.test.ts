// The user's inotify limits against the nodes the user runs plus one. All of a user's nodes share that user's
// fs.inotify.max_user_instances (128 by default); measured on the test node image, a booted node holds 6
// instances and 14 watches, and nodes 1-21 of one user booted at 128 while the 22nd hung in early boot.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DockerEngine } from "../../../lib/engine/docker.ts";
import { PodmanEngine } from "../../../lib/engine/podman.ts";
import { INOTIFY_PER_NODE, engineInotifyLimits, inotifyFindings, nodeInotifyFindings } from "../../../lib/host/preflight.ts";
import { FakeEngineCli } from "../../fixtures/fake-engine-cli.ts";
import { FakeHost, RecordingRunner, runCli } from "../../fixtures/fakes.ts";

const limits = (instances: number | null, watches: number | null = 524288) =>
  new FakeHost({
    files: {
      ...(instances !== null ? { "/proc/sys/fs/inotify/max_user_instances": `${instances}\n` } : {}),
      ...(watches !== null ? { "/proc/sys/fs/inotify/max_user_watches": `${watches}\n` } : {}),
    },
  });
const modulesLoaded = ["br_netfilter", "ip6_tables", "ip6table_nat", "ip_tables", "iptable_nat", "vxlan"].map((m) => `${m} 1 0 - Live 0x0`).join("\n");
const names = (n: number) => Array.from({ length: n }, (_, i) => `u7s-node-t${i + 1}\n`).join("");

describe("inotify limits against the user's running nodes plus the next", () => {
  test("the measured figure: 6 instances and 14 watches per node (128 fits 21 nodes, not 22)", () => {
    expect(INOTIFY_PER_NODE).toEqual({ instances: 6, watches: 14 });
  });

  test.each([
    // [max_user_instances, running nodes, adding, advise, level of the instances finding]
    [128, 21, 1, false, "error"], // the 22nd node of the issue: 2 left, a node needs 6
    [128, 20, 1, false, "warn"], // the 21st fits, and is the last
    [128, 19, 1, false, "ok"],
    [128, 0, 1, false, "ok"], // up on a default host: no noise
    [128, 0, 1, true, "warn"], // doctor: below kind's advice, real nodes hold more
    [512, 0, 1, true, "ok"],
    [512, 84, 1, false, "warn"],
    [128, 21, 0, false, "warn"], // this node already runs: never an error, only "no further node fits"
  ] as const)("max_user_instances %d with %d running (+%d, advise %p): %s", (max, running, adding, advise, level) => {
    const [instances] = inotifyFindings(limits(max), running, adding, advise, "docker");
    expect(instances!.level).toBe(level);
    expect(instances!.message).toStartWith(`fs.inotify.max_user_instances is ${max}:`);
    if (level !== "ok" && max === 128) expect(instances!.hint).toBe(`echo fs.inotify.max_user_instances=512 | sudo tee -a /etc/sysctl.d/99-usernetes.conf && sudo sysctl -w fs.inotify.max_user_instances=512`);
  });

  test("the error names the limit, the count and the boot hang; the fix raises past kind's 512 when the nodes need more", () => {
    const [f] = inotifyFindings(limits(128), 21, 1, false, "docker");
    expect(f!.message).toBe(
      'fs.inotify.max_user_instances is 128: the 21 nodes this user runs on docker hold about 126 (6 each, measured on a bare node), so the next node cannot get its 6 and would hang in early boot ("Failed to create inotify object: Too many open files")',
    );
    const [many] = inotifyFindings(limits(512), 85, 1, false, "docker"); // 2 left; twice what 87 nodes need
    expect(many!.level).toBe("error");
    expect(many!.hint).toContain("fs.inotify.max_user_instances=1044 ");
  });

  test("max_user_watches is checked the same way; an unreadable limit is a warning, not a guess", () => {
    const [, watches] = inotifyFindings(limits(8192, 100), 7, 1);
    expect(watches).toMatchObject({ level: "error", message: expect.stringContaining("fs.inotify.max_user_watches is 100") });
    expect(inotifyFindings(limits(null, null), 0, 1).map((f) => f.level)).toEqual(["warn", "warn"]);
  });

  test("running nodes are counted by the engine's labels in one `ps` (forwarders carry no settings label); a failing count is a warning", async () => {
    const runner = new RecordingRunner().on(["docker", "ps"], { stdout: names(21) });
    const findings = await nodeInotifyFindings(new DockerEngine("docker", runner.run), limits(128), false);
    expect(runner.argvs).toEqual([["docker", "ps", "--filter", "label=io.u7s.node", "--filter", "label=io.u7s.settings", "--format", "{{.Names}}"]]);
    expect(findings[0]!.level).toBe("error");
    const down = new RecordingRunner().failOn(["docker"]);
    expect((await nodeInotifyFindings(new DockerEngine("docker", down.run), limits(128), false))[0]).toMatchObject({ level: "warn", message: expect.stringContaining("cannot count") });
  });
});

describe("nodes on every engine of the user count", () => {
  test("a rootless podman's nodes add to docker's; an engine that is not this user's rootless one (or does not answer) adds none", async () => {
    const docker = new RecordingRunner().on(["docker", "ps"], { stdout: names(10) });
    const podman = new RecordingRunner().on(["podman", "unshare", "true"], {}).on(["podman", "ps"], { stdout: names(11) });
    const rootful = new RecordingRunner().on(["podman", "unshare"], { exitCode: 125 }).on(["podman", "info"], { stdout: '{"host":{"security":{"rootless":false}}}' }).on(["podman", "ps"], { stdout: names(50) });
    const down = new RecordingRunner().failOn("*");
    const [f] = await nodeInotifyFindings(new DockerEngine("docker", docker.run), limits(128), false, false, [new PodmanEngine("podman", podman.run), new PodmanEngine("podman", rootful.run), new PodmanEngine("podman", down.run)]);
    expect(f!.level).toBe("error");
    expect(f!.message).toContain("the 21 nodes this user runs on docker and podman hold about 126");
    expect(rootful.commands.some((c) => c.startsWith("podman ps"))).toBe(false);
  });
});

describe("preflight (check-preflight, and up's preflight) carries the check", () => {
  const modules = ["br_netfilter", "ip6_tables", "ip6table_nat", "ip_tables", "iptable_nat", "vxlan"].map((m) => `${m} 1 0 - Live 0x0`).join("\n");
  test("21 nodes running at max_user_instances 128: the next node fails preflight, naming the limit", async () => {
    const cli = new FakeEngineCli();
    const runner = new RecordingRunner().on("*", (argv, opts) => cli.runner(argv, opts)).on(["docker", "ps"], (argv) => (argv.includes("--all") ? cli.runner(argv) : { stdout: names(21) }));
    const host = { files: { "/proc/modules": modules, "/proc/sys/fs/inotify/max_user_instances": "128\n", "/proc/sys/fs/inotify/max_user_watches": "524288\n" } };
    const r = await runCli(["check-preflight"], { runner, env: { CONTAINER_ENGINE: "docker" }, host });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("✗ fs.inotify.max_user_instances is 128: the 21 nodes this user runs on docker hold about 126");
    const room = await runCli(["check-preflight"], { runner: new RecordingRunner().on("*", (argv, opts) => cli.runner(argv, opts)), env: { CONTAINER_ENGINE: "docker" }, host });
    expect(room.stdout).toContain("✓ fs.inotify.max_user_instances is 128: room for about 21 more node(s)");
  });
});

// Kernel 4.9+ keeps inotify limits per user namespace (/proc/sys/user/max_inotify_*): a rootless engine's
// nodes count against its namespace's limit and the host's. A new namespace starts unlimited (INT_MAX), but
// its owner can lower it; measured here on rootless Podman 4.3 with the test image: at 10 in the namespace,
// nodes 1-2 boot and the 3rd hangs in early boot ("Failed to create inotify object").
describe("the limit of the engine's user namespace, when lower than the host's", () => {
  const INT_MAX = 2147483647;

  test("applies, named with the host's sysctl and where it is lower; the fix is made in that namespace", () => {
    const [f, w] = inotifyFindings(limits(128), 2, 1, false, "podman", { "fs.inotify.max_user_instances": 12, "fs.inotify.max_user_watches": INT_MAX });
    expect(f).toMatchObject({
      level: "error",
      message: "fs.inotify.max_user_instances is 12 in the engine's user namespace (its own /proc/sys/user/max_inotify_instances; the host's is 128): the 2 nodes this user runs on podman hold about 12 (6 each, measured on a bare node), so the next node cannot get its 6 and would hang in early boot (\"Failed to create inotify object: Too many open files\")",
    });
    expect(f!.hint).toBe("as this user, in the engine's user namespace (`podman unshare`): echo 512 > /proc/sys/user/max_inotify_instances; or restart the engine (a new user namespace starts unlimited)");
    // unlimited in the namespace: the host's applies, as before
    expect(w!.message).toStartWith("fs.inotify.max_user_watches is 524288:");
    const [docker] = inotifyFindings(limits(128), 1, 1, false, "docker", { "fs.inotify.max_user_instances": 12 });
    expect(docker!.level).toBe("warn");
    expect(docker!.hint).toContain("`nsenter -U --preserve-credentials -t $(cat $XDG_RUNTIME_DIR/docker.pid)`");
    expect(inotifyFindings(limits(128), 1, 1, false, "nerdctl", { "fs.inotify.max_user_instances": 12 })[0]!.hint).toContain("`nsenter -U --preserve-credentials -t PID` of the engine's RootlessKit child");
  });

  test("a namespace limit above the host's changes nothing", () => {
    expect(inotifyFindings(limits(128), 21, 1, false, "podman", { "fs.inotify.max_user_instances": INT_MAX })).toEqual(inotifyFindings(limits(128), 21, 1, false, "podman"));
  });

  test("engineInotifyLimits: one cat in the engine's namespace; a rootful engine, or one that cannot be read, gives none", async () => {
    const runner = new RecordingRunner().on(["podman", "unshare"], { stdout: "12\n524288\n" });
    expect(await engineInotifyLimits(new PodmanEngine("podman", runner.run), true, runner.run, "/run/user/1000")).toEqual({ "fs.inotify.max_user_instances": 12, "fs.inotify.max_user_watches": 524288 });
    expect(runner.commands).toEqual(["podman unshare --rootless-netns cat /proc/sys/user/max_inotify_instances /proc/sys/user/max_inotify_watches"]);
    const rootful = new RecordingRunner();
    expect(await engineInotifyLimits(new PodmanEngine("podman", rootful.run), false, rootful.run, undefined)).toEqual({});
    expect(rootful.commands).toEqual([]);
    const old = new RecordingRunner().on(["podman", "unshare"], { exitCode: 1, stderr: "cat: /proc/sys/user/max_inotify_watches: No such file or directory" });
    expect(await engineInotifyLimits(new PodmanEngine("podman", old.run), true, old.run, undefined)).toEqual({});
    const garbled = new RecordingRunner().on(["podman", "unshare"], { stdout: "12\n" });
    expect(await engineInotifyLimits(new PodmanEngine("podman", garbled.run), true, garbled.run, undefined)).toEqual({});
  });

  test("up's preflight stops the 3rd node where the engine's namespace allows 12 instances, before anything is created", async () => {
    const cli = new FakeEngineCli("podman");
    cli.usernsInotify.instances = 12;
    const runner = new RecordingRunner().on("*", (argv, opts) => cli.runner(argv, opts)).on(["podman", "ps"], (argv) => (argv.includes("--all") ? cli.runner(argv) : { stdout: names(2) }));
    const host = { files: { "/proc/modules": modulesLoaded, "/proc/sys/fs/inotify/max_user_instances": "128\n", "/proc/sys/fs/inotify/max_user_watches": "524288\n" } };
    const home = mkdtempSync(join(tmpdir(), "u7s-inotify-"));
    const r = await runCli(["up", "--no-init", "--image", "x"], { runner, env: { CONTAINER_ENGINE: "podman", HOME: home }, host }).finally(() => rmSync(home, { recursive: true, force: true }));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: preflight check failed: fs.inotify.max_user_instances is 12 in the engine's user namespace");
    expect(cli.mutations).toEqual([]);
  });
});
