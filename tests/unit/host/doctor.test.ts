import { describe, expect, test } from "bun:test";
import { resolveNodeConfig } from "../../../lib/config/resolve.ts";
import { PodmanEngine } from "../../../lib/engine/podman.ts";
import {
  checkDisk,
  delegateFix,
  detectDistro,
  freeSubIdStart,
  installFix,
  parseOsRelease,
  podmanNetworkCmd,
  runDoctor,
  subIdCount,
  type Check,
  type DoctorReport,
} from "../../../lib/host/doctor.ts";
import { FakeHost, RecordingRunner, runCli } from "../../fixtures/fakes.ts";
import { recordedHost } from "./recorded-host.ts";

const MODULES = "br_netfilter ip6_tables ip6table_nat ip_tables iptable_nat vxlan";
const GiB = 2 ** 30;

/** podmanRunner answers the engine calls doctor makes: info (with this version), rp_filter, the restart unit, no node. */
function podmanRunner(version: string, rpFilter = "2"): RecordingRunner {
  return new RecordingRunner()
    .on(["podman", "info"], { stdout: JSON.stringify({ host: { security: { rootless: true }, cgroupVersion: "v2" }, version: { Version: version } }) })
    .on(["podman", "unshare"], { stdout: `${rpFilter}\n` })
    .on(["podman", "container", "inspect"], { exitCode: 125, stdout: "[]", stderr: "Error: no such container u7s-node-a\n" });
}

async function doctorOn(name: string, version: string, opts: { rpFilter?: string; free?: number } = {}): Promise<{ report: DoctorReport; runner: RecordingRunner }> {
  const { host, info } = recordedHost(name);
  const env = { HOME: info.home, XDG_RUNTIME_DIR: `/run/user/${info.user.uid}`, CONTAINER_ENGINE: "podman" };
  const runner = podmanRunner(version, opts.rpFilter);
  const config = await resolveNodeConfig({ flags: {}, env, host });
  const report = await runDoctor({ config, engine: new PodmanEngine("podman", runner.run), host, runner: runner.run, env, freeBytes: () => opts.free ?? 50 * GiB });
  return { report, runner };
}

const byId = (r: DoctorReport) => Object.fromEntries(r.checks.map((c) => [c.id, c]));
const notOk = (r: DoctorReport) => r.checks.filter((c) => c.level !== "ok").map((c) => [c.id, c.level, c.fix] as const);

describe("distribution family from /etc/os-release", () => {
  test.each([
    ["valid-debian-12", "debian", "debian"],
    ["invalid-ubuntu-24.04", "ubuntu", "debian"],
    ["valid-fedora-40", "fedora", "fedora"],
    ["invalid-rocky-9", "rocky", "fedora"],
  ])("%s: ID %s, family %s", (name, id, family) => {
    expect(detectDistro(recordedHost(name).host)).toMatchObject({ id, family });
  });

  test("ID_LIKE decides an unknown ID; nothing known: unknown, with a generic fix", () => {
    const like = new FakeHost({ files: { "/etc/os-release": 'ID=mydistro\nID_LIKE="suse opensuse"\n' } });
    expect(detectDistro(like).family).toBe("suse");
    const none = detectDistro(new FakeHost());
    expect(none.family).toBe("unknown");
    expect(installFix(none, ["uidmap"])).toBe("install uidmap with unknown's package manager");
    expect(parseOsRelease("PRETTY_NAME='A B'\n# c\nX=\"y\"")).toEqual({ PRETTY_NAME: "A B", X: "y" });
  });

  test.each([
    ["debian", ["podman"], "sudo apt-get install -y --no-install-recommends podman slirp4netns uidmap"],
    ["fedora", ["uidmap", "slirp4netns"], "sudo dnf install -y shadow-utils slirp4netns"],
    ["suse", ["uidmap"], "sudo zypper --non-interactive install shadow"],
    ["arch", ["slirp4netns"], "sudo pacman -S --needed --noconfirm slirp4netns"],
  ] as const)("install fix on %s", (family, needs, fix) => {
    expect(installFix({ id: family, name: family, family }, needs)).toBe(fix);
  });

  test("rootless Docker on Fedora/RHEL: not packaged, the fix says what to do instead", () => {
    expect(installFix({ id: "fedora", name: "Fedora", family: "fedora" }, ["docker"])).toContain("use Podman (`sudo dnf install -y podman slirp4netns`");
  });
});

describe("recorded hosts", () => {
  test("Debian 12 prepared by init-host: every check ok, one engine call of each kind, run concurrently", async () => {
    const { report, runner } = await doctorOn("valid-debian-12", "4.3.1");
    expect(notOk(report)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.user).toBe("alice");
    expect(report.checks.map((c) => c.id)).toEqual([
      "distro", "subids", "idmap", "userns", "cgroups", "linger", "modules", "slirp4netns", "dbus", "disk",
      "engine", "rp_filter", "restart", "network", "ports", "inotify", "inotify", "keys", "keys",
    ]);
    // offline: no pull, no registry; each engine question asked once
    expect(runner.commands.sort()).toEqual([
      "podman container inspect u7s-node-a",
      "podman info --format '{{json .}}'",
      "podman ps --filter label=io.u7s.node --filter label=io.u7s.settings --format \\{\\{.Names\\}\\}",
      "podman unshare --rootless-netns cat /proc/sys/net/ipv4/conf/default/rp_filter",
      // the inotify limits of the engine's user namespace, where the nodes' processes count
      "podman unshare --rootless-netns cat /proc/sys/user/max_inotify_instances /proc/sys/user/max_inotify_watches",
      "systemctl --user is-enabled podman-restart.service",
    ]);
  });

  test("Fedora 40 with Podman 5 told to use slirp4netns (containers.conf): every check ok", async () => {
    const { report } = await doctorOn("valid-fedora-40", "5.2.2");
    expect(notOk(report)).toEqual([]);
    expect(byId(report).network!.message).toBe("podman 5.2.2 networks rootless containers with slirp4netns (/etc/containers/containers.conf): the API server reaches kubelets at host IPs, as Usernetes is tested");
  });

  test("a fresh Ubuntu 24.04: each failure with its apt-get fix, AppArmor's userns restriction included", async () => {
    const { report } = await doctorOn("invalid-ubuntu-24.04", "4.9.3", { rpFilter: "1" });
    expect(report.ok).toBe(false);
    expect(notOk(report)).toEqual([
      ["subids", "fail", "sudo usermod --add-subuids 165536-231071 --add-subgids 165536-231071 bob"],
      ["idmap", "fail", "sudo apt-get install -y --no-install-recommends uidmap"],
      ["userns", "fail", "printf 'abi <abi/4.0>,\\ninclude <tunables/global>\\n\\n/usr/bin/podman flags=(unconfined) {\\n  userns,\\n}\\n' | sudo tee /etc/apparmor.d/usr.bin.podman && sudo apparmor_parser -r /etc/apparmor.d/usr.bin.podman"],
      ["cgroups", "fail", delegateFix("bob")],
      ["linger", "warn", "sudo loginctl enable-linger bob"],
      ["modules", "fail", `sudo modprobe -a ${MODULES} && printf '%s\\n' ${MODULES} | sudo tee -a /etc/modules-load.d/usernetes.conf`],
      ["slirp4netns", "fail", "sudo apt-get install -y --no-install-recommends slirp4netns"],
      ["dbus", "warn", "sudo apt-get install -y --no-install-recommends dbus-user-session"],
      ["rp_filter", "fail", "echo net.ipv4.conf.default.rp_filter=2 | sudo tee -a /etc/sysctl.d/99-usernetes.conf && sudo sysctl -w net.ipv4.conf.default.rp_filter=2, then restart podman (its namespace copies the value when it starts)"],
      ["inotify", "warn", "echo fs.inotify.max_user_instances=512 | sudo tee -a /etc/sysctl.d/99-usernetes.conf && sudo sysctl -w fs.inotify.max_user_instances=512"],
      ["inotify", "warn", "echo fs.inotify.max_user_watches=524288 | sudo tee -a /etc/sysctl.d/99-usernetes.conf && sudo sysctl -w fs.inotify.max_user_watches=524288"],
      ["keys", "warn", "echo kernel.keys.maxkeys=2000 | sudo tee -a /etc/sysctl.d/99-usernetes.conf && sudo sysctl -w kernel.keys.maxkeys=2000"],
      ["keys", "warn", "echo kernel.keys.maxbytes=2000000 | sudo tee -a /etc/sysctl.d/99-usernetes.conf && sudo sysctl -w kernel.keys.maxbytes=2000000"],
    ]);
    expect(byId(report).cgroups!.message).toBe("cgroup v2 controllers not delegated to bob: cpu cpuset io");
  });

  test("a fresh Rocky Linux 9 with Podman 5: each failure with its dnf fix, pasta and disabled user namespaces included", async () => {
    const { report } = await doctorOn("invalid-rocky-9", "5.2.2", { free: 1 * GiB });
    expect(notOk(report)).toEqual([
      ["subids", "fail", "sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 dave"],
      ["idmap", "fail", "sudo dnf install -y shadow-utils"],
      ["userns", "fail", "sudo sysctl -w user.max_user_namespaces=28633 && echo user.max_user_namespaces=28633 | sudo tee -a /etc/sysctl.d/99-usernetes.conf"],
      ["cgroups", "fail", delegateFix("dave")],
      ["linger", "warn", "sudo loginctl enable-linger dave"],
      ["modules", "fail", `sudo dnf install -y kmod kernel-modules && sudo modprobe -a ${MODULES} && printf '%s\\n' ${MODULES} | sudo tee -a /etc/modules-load.d/usernetes.conf`],
      ["slirp4netns", "fail", "sudo dnf install -y slirp4netns"],
      ["dbus", "warn", "sudo dnf install -y dbus-daemon"],
      ["disk", "fail", "free space in /home/dave (e.g. remove unused images: `ENGINE system prune`)"],
      ["network", "fail", `mkdir -p /home/dave/.config/containers/containers.conf.d && printf '[network]\\npasta_options = ["-a", "10.0.2.100", "-n", "24", "-g", "10.0.2.2"]\\n' > /home/dave/.config/containers/containers.conf.d/u7s-pasta.conf, then \`u7s down\` every node (and stop other containers on Podman networks) and \`u7s up\` again`],
      ["inotify", "warn", "echo fs.inotify.max_user_instances=512 | sudo tee -a /etc/sysctl.d/99-usernetes.conf && sudo sysctl -w fs.inotify.max_user_instances=512"],
      ["inotify", "warn", "echo fs.inotify.max_user_watches=524288 | sudo tee -a /etc/sysctl.d/99-usernetes.conf && sudo sysctl -w fs.inotify.max_user_watches=524288"],
      ["keys", "warn", "echo kernel.keys.maxkeys=2000 | sudo tee -a /etc/sysctl.d/99-usernetes.conf && sudo sysctl -w kernel.keys.maxkeys=2000"],
      ["keys", "warn", "echo kernel.keys.maxbytes=2000000 | sudo tee -a /etc/sysctl.d/99-usernetes.conf && sudo sysctl -w kernel.keys.maxbytes=2000000"],
    ]);
    expect(byId(report).network!.message).toStartWith("podman 5.2.2 networks rootless containers with pasta (Podman 5's default): under pasta the engine's network namespace holds the host's own address, so the API server cannot reach a kubelet at HOST_IP:10250");
  });

  test("every warning or failure on a recorded host comes with a fix", async () => {
    for (const [name, v] of [["invalid-ubuntu-24.04", "4.9.3"], ["invalid-rocky-9", "5.2.2"]] as const) {
      const { report } = await doctorOn(name, v);
      const missing = report.checks.filter((c: Check) => c.level !== "ok" && !c.fix);
      expect(missing).toEqual([]);
    }
  });
});

describe("single checks", () => {
  test("sub-ID ranges add up per user (name or uid); a new range starts past every existing one", () => {
    const text = "alice:100000:30000\n1000:200000:40000\nbob:165536:65536\n";
    expect(subIdCount(text, { name: "alice", uid: 1000 })).toBe(70000);
    expect(subIdCount(text, { name: "carol", uid: 1002 })).toBe(0);
    expect(freeSubIdStart(text, "x:300000:10\n")).toBe(300010);
    expect(freeSubIdStart("")).toBe(100000);
  });

  test("containers.conf's rootless network command", () => {
    expect(podmanNetworkCmd('[network]\ndefault_rootless_network_cmd = "slirp4netns"\n')).toBe("slirp4netns");
    expect(podmanNetworkCmd("[network]\n# default_rootless_network_cmd = \"slirp4netns\"\n")).toBeUndefined();
    expect(podmanNetworkCmd("default_rootless_network_cmd='pasta'")).toBe("pasta");
  });

  test("disk: free space measured at the nearest existing directory; 5 GiB ok, 2 GiB warn, less fails", () => {
    const host = new FakeHost({ dirs: ["/home/a"] });
    const seen: string[] = [];
    const at = (free: number) => checkDisk(host, "/home/a/.local/share/containers", (p) => (seen.push(p), free));
    expect(at(6 * GiB).level).toBe("ok");
    expect(at(3 * GiB).level).toBe("warn");
    expect(at(1 * GiB).level).toBe("fail");
    expect(seen[0]).toBe("/home/a");
    expect(checkDisk(host, "/x", () => undefined).level).toBe("warn");
  });
});

describe("u7s doctor (in process)", () => {
  test("--json parses and carries every check; a failure exits 1", async () => {
    const { host, info } = recordedHost("invalid-ubuntu-24.04");
    const r = await runCli(["doctor", "--json"], { host, runner: podmanRunner("4.9.3"), env: { HOME: info.home, CONTAINER_ENGINE: "podman" } });
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(report.ok).toBe(false);
    expect(report.distro).toEqual({ id: "ubuntu", name: "Ubuntu 24.04.1 LTS", family: "debian" });
    expect(report.checks.find((c) => c.id === "idmap")).toEqual({ id: "idmap", level: "fail", message: "newuidmap and newgidmap not found: rootless engines cannot map sub-IDs", fix: "sudo apt-get install -y --no-install-recommends uidmap" });
  });

  test("text: one line per check, the fix under each problem, a summary; all ok exits 0", async () => {
    const { host, info } = recordedHost("valid-debian-12");
    const r = await runCli(["doctor"], { host, runner: podmanRunner("4.3.1"), env: { HOME: info.home, CONTAINER_ENGINE: "podman" } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(" ✓ sub-IDs: alice has 65536 subordinate UIDs and 65536 GIDs\n");
    // (free disk space is measured on the real file system, where the recorded HOME does not exist)
    expect(r.stdout).toMatch(/\ndoctor: 0 failed, [01] warning\(s\), 1[89] ok\n$/);
    const bad = await runCli(["doctor"], { host: recordedHost("invalid-rocky-9").host, runner: podmanRunner("5.2.2"), env: { CONTAINER_ENGINE: "podman" } });
    expect(bad.stdout).toContain(" ✗ newuidmap and newgidmap not found: rootless engines cannot map sub-IDs\n   fix: sudo dnf install -y shadow-utils\n");
  });

  test("no engine installed: a failure with the family's install command; the engine is not asked", async () => {
    const { host } = recordedHost("valid-fedora-40");
    host.opts.binaries = {};
    const runner = new RecordingRunner();
    const r = await runCli(["doctor", "--json"], { host, runner });
    const engine = (JSON.parse(r.stdout) as DoctorReport).checks.find((c) => c.id === "engine");
    expect(engine).toMatchObject({ level: "fail", fix: "sudo dnf install -y podman slirp4netns shadow-utils; then `u7s init-host` as the user" });
    expect(runner.calls).toEqual([]);
  });

  test("an engine that does not answer: a failure with the engine's own hint", async () => {
    const { host, info } = recordedHost("valid-debian-12");
    const runner = podmanRunner("4.3.1").failOn(["podman", "info"], { stderr: "Error: cannot set up namespace\n" });
    const r = await runCli(["doctor", "--json"], { host, runner, env: { HOME: info.home, CONTAINER_ENGINE: "podman" } });
    const engine = (JSON.parse(r.stdout) as DoctorReport).checks.find((c) => c.id === "engine");
    expect(engine!.level).toBe("fail");
    expect(engine!.message).toStartWith("podman is not reachable");
    expect(engine!.fix).toContain("subuid/subgid");
  });

  test("as root through sudo: per-user checks are for SUDO_USER", async () => {
    const { host } = recordedHost("valid-debian-12");
    host.opts.user = { name: "root", uid: 0 };
    const r = await runCli(["doctor", "--json"], { host, runner: podmanRunner("4.3.1"), env: { SUDO_USER: "alice", CONTAINER_ENGINE: "podman" } });
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(report.user).toBe("alice");
    expect(report.checks.find((c) => c.id === "user")!.message).toContain("per-user checks are for alice (SUDO_USER)");
    expect(report.checks.find((c) => c.id === "subids")!.level).toBe("ok");
  });
});
