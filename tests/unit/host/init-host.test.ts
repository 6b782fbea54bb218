import { describe, expect, test } from "bun:test";
import { RecordingRunner, runCli } from "../../fixtures/fakes.ts";
import { recordedHost } from "./recorded-host.ts";

const MODULES = "br_netfilter ip6_tables ip6table_nat ip_tables iptable_nat vxlan";

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
        ...MODULES.split(" "),
        "EOF",
        `modprobe -a ${MODULES}`,
        "# Setting sysctls (rp_filter loose for Flannel's VXLAN)",
        "install -D -m 0644 /dev/stdin /etc/sysctl.d/99-usernetes.conf <<'EOF'",
        "net.ipv4.conf.default.rp_filter = 2",
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
    expect(r.stdout).toContain("net.ipv4.conf.default.rp_filter = 2\nuser.max_user_namespaces = 28633\nEOF\n");
    expect(r.stdout).toContain("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 dave\n");
  });

  test("no user named: sub-IDs and linger are skipped, and the plan says so", async () => {
    const { host } = asRoot("valid-debian-12");
    const r = await runCli(["init-host", "--dry-run"], { host, env: { CONTAINER_ENGINE: "podman" } });
    expect(r.stdout).toEndWith("# Sub-IDs and linger\n# skipped: no user named (run through sudo, or pass --user NAME)\n");
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
  test("Podman 5 on a prepared host: slirp4netns configured, storage migrated, restart unit enabled", async () => {
    const { host, info } = recordedHost("valid-debian-12");
    const runner = new RecordingRunner().on(["podman", "--version"], { stdout: "podman version 5.0.2\n" });
    const r = await runCli(["init-host"], { host, runner, env: { HOME: info.home, CONTAINER_ENGINE: "podman" } });
    expect(r.code).toBe(0);
    expect(r.runner.commands).toEqual([
      "podman --version",
      "install -D -m 0644 /dev/stdin /home/alice/.config/containers/containers.conf",
      "podman system migrate",
      "systemctl --user enable --now podman-restart.service",
    ]);
    expect(runner.calls[1]!.opts?.input).toBe('[network]\ndefault_rootless_network_cmd = "slirp4netns"\n');
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
