import { describe, expect, test } from "bun:test";
import { mergeModules, mergeSysctl, UPSTREAM_MODULES, type SysctlWant } from "../../../lib/host/init-host.ts";
import { RecordingRunner, runCli } from "../../fixtures/fakes.ts";
import { recordedHost } from "./recorded-host.ts";

const MODULES = "br_netfilter ip6_tables ip6table_nat ip_tables iptable_nat vxlan";
/** UPSTREAM: the 22 modules of upstream's init-host.root.sh, in its order. */
const UPSTREAM =
  "tun tap bridge br_netfilter veth ip_tables ip6_tables iptable_nat ip6table_nat iptable_filter ip6table_filter nf_tables x_tables xt_MASQUERADE xt_addrtype xt_comment xt_conntrack xt_mark xt_multiport xt_nat xt_tcpudp vxlan";

/** asRoot loads a recorded host with root as the invoking user. */
function asRoot(name: string) {
  const { host, info } = recordedHost(name);
  host.opts.user = { name: "root", uid: 0 };
  return { host, info };
}

describe("init-host --dry-run as root: the plan as a shell script, nothing run", () => {
  test("Debian 12, rootless Docker, for the user running sudo", async () => {
    const { host } = asRoot("valid-debian-12");
    const r = await runCli(["init-host", "--dry-run"], { host, env: { SUDO_USER: "alice", CONTAINER_ENGINE: "docker" } });
    expect(r.code).toBe(0);
    expect(r.runner.calls).toEqual([]);
    expect(r.stdout).toBe(
      [
        "# Installing docker.io rootlesskit slirp4netns uidmap dbus-user-session (apt-get)",
        "apt-get update",
        "apt-get install -y --no-install-recommends docker.io rootlesskit slirp4netns uidmap dbus-user-session",
        "# Putting Debian's rootless Docker scripts on PATH",
        "ln -sfn /usr/share/docker.io/contrib/dockerd-rootless.sh /usr/local/bin/dockerd-rootless.sh",
        "ln -sfn /usr/share/docker.io/contrib/dockerd-rootless-setuptool.sh /usr/local/bin/dockerd-rootless-setuptool.sh",
        "# Delegating cgroup controllers (cpu cpuset io memory pids) to users' services",
        "install -D -m 0644 /dev/stdin /etc/systemd/system/user@.service.d/delegate.conf <<'EOF'",
        "[Service]",
        "Delegate=cpu cpuset io memory pids",
        "EOF",
        "systemctl daemon-reload",
        "# Loading the node's kernel modules, now and at boot",
        "install -D -m 0644 /dev/stdin /etc/modules-load.d/usernetes.conf <<'EOF'",
        ...UPSTREAM.split(" "),
        "EOF",
        `modprobe -a ${MODULES}`,
        "# cannot read /lib/modules/6.1.0-test/modules.dep: the other modules of /etc/modules-load.d/usernetes.conf load at the next boot",
        "# Setting sysctls (rp_filter loose for Flannel's VXLAN, inotify limits and key quota for many nodes)",
        "install -D -m 0644 /dev/stdin /etc/sysctl.d/99-usernetes.conf <<'EOF'",
        "net.ipv4.conf.default.rp_filter = 2",
        "fs.inotify.max_user_instances = 512",
        "fs.inotify.max_user_watches = 524288",
        "kernel.keys.maxkeys = 2000",
        "kernel.keys.maxbytes = 2000000",
        "EOF",
        "sysctl -p /etc/sysctl.d/99-usernetes.conf",
        "# Enabling linger for alice (the engine keeps running after logout)",
        "loginctl enable-linger alice",
        "",
      ].join("\n"),
    );
  });

  test("Ubuntu 24.04 for --user bob (Podman): sub-IDs and the AppArmor profile are added", async () => {
    const { host } = asRoot("invalid-ubuntu-24.04");
    const r = await runCli(["init-host", "--dry-run", "--user", "bob"], { host, env: { CONTAINER_ENGINE: "podman" } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("apt-get install -y --no-install-recommends podman slirp4netns uidmap dbus-user-session\n");
    expect(r.stdout).toContain("# Allowing /usr/bin/podman user namespaces under AppArmor\ninstall -D -m 0644 /dev/stdin /etc/apparmor.d/usr.bin.podman <<'EOF'\nabi <abi/4.0>,\n");
    expect(r.stdout).toContain("apparmor_parser -r /etc/apparmor.d/usr.bin.podman\n");
    expect(r.stdout).toContain("# Giving bob 65536 sub-IDs (165536-231071)\nusermod --add-subuids 165536-231071 --add-subgids 165536-231071 bob\n");
    expect(r.stdout).not.toContain("dockerd-rootless");
  });

  test("Rocky 9 (RHEL-like): dnf, no apt-get update; user namespaces re-enabled by sysctl", async () => {
    const { host } = asRoot("invalid-rocky-9");
    const r = await runCli(["init-host", "--dry-run", "--user", "dave"], { host, env: { CONTAINER_ENGINE: "podman" } });
    expect(r.stdout).toStartWith("# Installing podman slirp4netns shadow-utils (dnf)\ndnf install -y podman slirp4netns shadow-utils\n");
    expect(r.stdout).toContain("net.ipv4.conf.default.rp_filter = 2\nfs.inotify.max_user_instances = 512\nfs.inotify.max_user_watches = 524288\nkernel.keys.maxkeys = 2000\nkernel.keys.maxbytes = 2000000\nuser.max_user_namespaces = 28633\nEOF\n");
    expect(r.stdout).toContain("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 dave\n");
  });

  test("no user named: sub-IDs and linger are skipped, and the plan says so", async () => {
    const { host } = asRoot("valid-debian-12");
    const r = await runCli(["init-host", "--dry-run"], { host, env: { CONTAINER_ENGINE: "podman" } });
    expect(r.stdout).toEndWith("# Sub-IDs and linger\n# skipped: no user named (run through sudo, or pass --user NAME)\n");
  });
});

describe("init-host merges into upstream's files: keeps every line, adds what is missing, idempotent", () => {
  test("modules: others' lines and comments stay, upstream's 22 are added once; a second merge changes nothing", () => {
    const existing = "# loaded by someone else\nnfs\nbr_netfilter\nip6-tables\n";
    const merged = mergeModules(existing, UPSTREAM_MODULES)!;
    expect(merged).toStartWith(existing);
    const lines = merged.trim().split("\n");
    expect(lines.filter((l) => l === "br_netfilter")).toEqual(["br_netfilter"]);
    expect(lines).not.toContain("ip6_tables"); // ip6-tables is the same module to modprobe
    expect(lines.length).toBe(4 + 22 - 2);
    expect(mergeModules(merged, UPSTREAM_MODULES)).toBeUndefined();
    expect(mergeModules(undefined, ["a", "b"])).toBe("a\nb\n");
    expect(mergeModules("x", ["a"])).toBe("x\na\n");
    expect(UPSTREAM_MODULES.join(" ")).toBe(UPSTREAM);
  });

  test("sysctl: a wrong value is replaced, a higher limit is never lowered, comments and others' keys stay; idempotent", () => {
    const existing = "# For VXLAN, net.ipv4.conf.default.rp_filter must not be 1 (strict)\nnet.ipv4.conf.default.rp_filter=1\nfs.inotify.max_user_instances = 8192\nvm.max_map_count = 262144\n";
    const wants: SysctlWant[] = [
      { key: "net.ipv4.conf.default.rp_filter", value: 2, mode: "set" },
      { key: "fs.inotify.max_user_instances", value: 512, mode: "raise" },
      { key: "fs.inotify.max_user_watches", value: 524288, mode: "raise" },
    ];
    const merged = mergeSysctl(existing, wants)!;
    expect(merged).toBe(
      "# For VXLAN, net.ipv4.conf.default.rp_filter must not be 1 (strict)\nnet.ipv4.conf.default.rp_filter = 2\nfs.inotify.max_user_instances = 8192\nvm.max_map_count = 262144\nfs.inotify.max_user_watches = 524288\n",
    );
    expect(mergeSysctl(merged, wants)).toBeUndefined();
    expect(mergeSysctl("fs/inotify/max_user_instances = 128\n", [wants[1]!])).toBe("fs.inotify.max_user_instances = 512\n");
  });

  test("a host already set up by upstream's script: the modules file is left alone, the sysctl file gains the inotify limits and the key quota", async () => {
    const { host } = asRoot("valid-debian-12");
    const upstreamSysctl = "# For VXLAN, net.ipv4.conf.default.rp_filter must not be 1 (strict) in the daemon's netns.\nnet.ipv4.conf.default.rp_filter = 2\n";
    host.opts.files = { ...host.opts.files, "/etc/modules-load.d/usernetes.conf": `${UPSTREAM.split(" ").join("\n")}\n`, "/etc/sysctl.d/99-usernetes.conf": upstreamSysctl };
    const r = await runCli(["init-host", "--dry-run", "--user", "alice"], { host, env: { CONTAINER_ENGINE: "podman" } });
    expect(r.stdout).toContain("# Loading the node's kernel modules, now and at boot\n# /etc/modules-load.d/usernetes.conf already lists upstream's 22 modules\nmodprobe -a");
    expect(r.stdout).toContain(`<<'EOF'\n${upstreamSysctl}fs.inotify.max_user_instances = 512\nfs.inotify.max_user_watches = 524288\nkernel.keys.maxkeys = 2000\nkernel.keys.maxbytes = 2000000\nEOF\n`);
  });

  test("the rest of upstream's modules load now where the kernel has them; those it lacks are named", async () => {
    const { host } = asRoot("valid-debian-12");
    const dir = "/lib/modules/6.1.0-test";
    host.opts.files = {
      ...host.opts.files,
      [`${dir}/modules.dep`]: UPSTREAM.split(" ").filter((m) => m !== "tap" && m !== "tun").map((m) => `kernel/net/${m}.ko.xz:`).join("\n"),
      [`${dir}/modules.builtin`]: "kernel/drivers/net/tun.ko\n",
    };
    const r = await runCli(["init-host", "--dry-run", "--user", "alice"], { host, env: { CONTAINER_ENGINE: "podman" } });
    // bridge is loaded already (the recorded /proc/modules); tun is built in (modprobe succeeds for it)
    const extra = UPSTREAM.split(" ").filter((m) => !MODULES.split(" ").includes(m) && m !== "tap" && m !== "bridge");
    expect(r.stdout).toContain(`modprobe -a ${MODULES}\nmodprobe -a ${extra.join(" ")}\n# this kernel has no tap (listed for upstream; not loaded)\n`);
  });
});

describe("init-host as root applies the plan", () => {
  test("each step runs in order with a progress line; files are written through install with their content on stdin", async () => {
    const { host } = asRoot("valid-fedora-40");
    const runner = new RecordingRunner();
    const r = await runCli(["init-host", "--user", "carol"], { host, runner, env: { CONTAINER_ENGINE: "podman" } });
    expect(r.code).toBe(0);
    expect(r.runner.commands).toEqual([
      "dnf install -y podman slirp4netns shadow-utils",
      "install -D -m 0644 /dev/stdin /etc/systemd/system/user@.service.d/delegate.conf",
      "systemctl daemon-reload",
      "install -D -m 0644 /dev/stdin /etc/modules-load.d/usernetes.conf",
      `modprobe -a ${MODULES}`,
      "install -D -m 0644 /dev/stdin /etc/sysctl.d/99-usernetes.conf",
      "sysctl -p /etc/sysctl.d/99-usernetes.conf",
      "loginctl enable-linger carol",
    ]);
    expect(runner.calls[1]!.opts?.input).toBe("[Service]\nDelegate=cpu cpuset io memory pids\n");
    // the plan is shown first, then one line per step
    expect(r.stderr).toContain("  # Delegating cgroup controllers (cpu cpuset io memory pids) to users' services\n");
    expect(r.stderr).toMatch(/ ✓ Enabling linger for carol \(the engine keeps running after logout\) \(\d+\.\ds\)\n/);
    expect(r.stdout).toBe("");
  });

  test("a failing step stops the run, naming the step and the command's stderr", async () => {
    const { host } = asRoot("valid-debian-12");
    const runner = new RecordingRunner().failOn(["modprobe"], { stderr: "modprobe: FATAL: Module vxlan not found\n" });
    const r = await runCli(["init-host", "--user", "alice"], { host, runner, env: { CONTAINER_ENGINE: "podman" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: Loading the node's kernel modules, now and at boot failed: command failed (exit code 1): modprobe -a");
    expect(r.stderr).toContain("modprobe: FATAL: Module vxlan not found");
    expect(r.runner.commands.some((c) => c.startsWith("sysctl"))).toBe(false);
  });
});

describe("init-host as the user", () => {
  test("Podman 5 on a prepared host: pasta given an address of its own (u7s's drop-in), storage migrated, restart unit enabled", async () => {
    const { host, info } = recordedHost("valid-debian-12");
    const runner = new RecordingRunner().on(["podman", "--version"], { stdout: "podman version 5.0.2\n" });
    const r = await runCli(["init-host"], { host, runner, env: { HOME: info.home, CONTAINER_ENGINE: "podman" } });
    expect(r.code).toBe(0);
    expect(r.runner.commands).toEqual([
      "podman --version",
      "install -D -m 0644 /dev/stdin /home/alice/.config/containers/containers.conf.d/u7s-pasta.conf",
      "podman system migrate",
      "systemctl --user enable --now podman-restart.service",
    ]);
    expect(runner.calls[1]!.opts?.input).toBe('[network]\npasta_options = ["-a", "10.0.2.100", "-n", "24", "-g", "10.0.2.2"]\n');
  });

  test("Podman 5 whose user chose slirp4netns keeps it; a drop-in already there is not written again", async () => {
    const { host, info } = recordedHost("valid-debian-12");
    host.opts.files = { ...host.opts.files, "/home/alice/.config/containers/containers.conf": '[network]\ndefault_rootless_network_cmd = "slirp4netns"\n' };
    const runner = new RecordingRunner().on(["podman", "--version"], { stdout: "podman version 5.4.2\n" });
    const r = await runCli(["init-host"], { host, runner, env: { HOME: info.home, CONTAINER_ENGINE: "podman" } });
    expect(r.runner.commands).toEqual(["podman --version", "podman system migrate", "systemctl --user enable --now podman-restart.service"]);
    host.opts.files = { ...host.opts.files, "/home/alice/.config/containers/containers.conf": "", "/home/alice/.config/containers/containers.conf.d/u7s-pasta.conf": '[network]\npasta_options = ["-a", "10.0.2.100"]\n' };
    const again = await runCli(["init-host"], { host, runner: new RecordingRunner().on(["podman", "--version"], { stdout: "podman version 5.4.2\n" }), env: { HOME: info.home, CONTAINER_ENGINE: "podman" } });
    expect(again.runner.commands).toEqual(["podman --version", "podman system migrate", "systemctl --user enable --now podman-restart.service"]);
    expect(again.stderr).toContain("already gives pasta an address of its own");
  });

  test("Podman 6 (pasta only): the same drop-in, no switch to a slirp4netns it does not have", async () => {
    const { host, info } = recordedHost("valid-debian-12");
    host.opts.binaries = { ...host.opts.binaries, pasta: "/usr/bin/pasta" };
    const runner = new RecordingRunner().on(["podman", "--version"], { stdout: "podman version 6.0.0\n" });
    const r = await runCli(["init-host"], { host, runner, env: { HOME: info.home, CONTAINER_ENGINE: "podman" } });
    expect(r.code).toBe(0);
    expect(r.runner.commands).toEqual([
      "podman --version",
      "install -D -m 0644 /dev/stdin /home/alice/.config/containers/containers.conf.d/u7s-pasta.conf",
      "podman system migrate",
      "systemctl --user enable --now podman-restart.service",
    ]);
  });

  test("Podman 5 with pasta but no slirp4netns: nothing for root to install (pasta is its network)", async () => {
    const { host, info } = recordedHost("valid-debian-12");
    host.opts.binaries = { newuidmap: "/usr/bin/newuidmap", newgidmap: "/usr/bin/newgidmap", podman: "/usr/bin/podman", pasta: "/usr/bin/pasta" };
    const runner = new RecordingRunner().on(["podman", "--version"], { stdout: "podman version 5.4.2\n" });
    const r = await runCli(["init-host"], { host, runner, env: { HOME: info.home, CONTAINER_ENGINE: "podman" } });
    expect(r.stderr).not.toContain("slirp4netns not found");
    expect(r.runner.commands).toContain("install -D -m 0644 /dev/stdin /home/alice/.config/containers/containers.conf.d/u7s-pasta.conf");
  });

  test("rootless Docker: the setup tool from Debian's contrib directory", async () => {
    const { host, info } = recordedHost("valid-debian-12");
    host.opts.files = { ...host.opts.files, "/usr/share/docker.io/contrib/dockerd-rootless-setuptool.sh": "#!/bin/sh\n" };
    const r = await runCli(["init-host", "--dry-run"], { host, env: { HOME: info.home, CONTAINER_ENGINE: "docker" } });
    expect(r.stdout).toStartWith("# Setting up rootless Docker for alice\n/usr/share/docker.io/contrib/dockerd-rootless-setuptool.sh install\n");
  });

  test("refuses while root's steps are missing, naming each and the sudo command; runs nothing", async () => {
    const { host, info } = recordedHost("invalid-ubuntu-24.04");
    const runner = new RecordingRunner().on(["podman", "--version"], { stdout: "podman version 4.9.3\n" });
    const r = await runCli(["init-host"], { host, runner, env: { HOME: info.home, CONTAINER_ENGINE: "podman" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: init-host as bob: root must prepare this host first\n");
    expect(r.stderr).toContain("  newuidmap and newgidmap not found: rootless engines cannot map sub-IDs\n");
    expect(r.stderr).toContain("hint: run `sudo u7s init-host --user bob`, then `u7s init-host` again as bob\n");
    expect(r.runner.commands).toEqual(["podman --version"]);
  });

  test("--dry-run lists what root must do first, then the user's plan", async () => {
    const { host, info } = recordedHost("invalid-ubuntu-24.04");
    const r = await runCli(["init-host", "--dry-run"], { host, env: { HOME: info.home, CONTAINER_ENGINE: "podman" } });
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith("# Needs root first (`sudo u7s init-host`)\n# sub-IDs: bob has 0 subordinate UIDs");
    expect(r.stdout).toContain("podman system migrate\n");
  });

  test.each([
    [["init-host", "--user", "alice"], "--user=\"alice\": only root prepares the host for another user (you are bob)"],
  ])("as the wrong user: %p exits 2, nothing run", async (argv, message) => {
    const { host } = recordedHost("invalid-ubuntu-24.04");
    const r = await runCli(argv, { host, env: { CONTAINER_ENGINE: "podman" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toStartWith(`error: ${message}\n`);
    expect(r.runner.calls).toEqual([]);
  });

  test.each([
    ["root", "not an unprivileged user name"],
    ["nobody-here", "no such user in /etc/passwd"],
    ["Bad;name", "not an unprivileged user name"],
  ])("as root, --user %s exits 2: %s", async (name, why) => {
    const { host } = asRoot("valid-debian-12");
    const r = await runCli(["init-host", "--user", name], { host, env: { CONTAINER_ENGINE: "podman" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(why);
    expect(r.runner.calls).toEqual([]);
  });
});
