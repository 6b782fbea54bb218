// matchFatalBoot against log lines recorded from real node boots: the inotify ones on this machine
// (the test node image on rootless Podman 4.3 whose user namespace allowed too few inotify instances,
// `journalctl -o cat -p err` and the journal with its prefixes), the cgroup and mount ones as systemd
// prints them on a container's console (kind's known issues: systemd in a container without writable
// cgroups; src/core/main.c, cgroup.c). Lines from healthy boots must not match.
import { describe, expect, test } from "bun:test";
import { FATAL_BOOT, matchFatalBoot } from "../../../lib/node/boot-watch.ts";

describe("matchFatalBoot", () => {
  test.each([
    ["Failed to create inotify object: Too many open files", "fs.inotify.max_user_instances"],
    ["Dec 02 16:53:54 u7s-fastfail-e-t93 systemd[1]: Failed to create inotify object: Too many open files", "fs.inotify.max_user_instances"],
    // logind says it carries on, but the limit is the same one: the node cannot run a kubelet
    ["Failed to create inotify watch on /var/run/utmp, ignoring: Too many open files", "fs.inotify.max_user_instances"],
    ["inotify_init1() failed: Too many open files", "fs.inotify.max_user_instances"],
    ["Failed to add watch on /run/systemd/ask-password: No space left on device", "fs.inotify.max_user_watches"],
    ["inotify_add_watch(4, /etc/systemd/system, 0x2) failed: No space left on device", "fs.inotify.max_user_watches"],
    ["[!!!!!!] Failed to mount API filesystems.", "cannot mount /proc, /sys or the cgroup file system"],
    ["Failed to create /init.scope control group: Read-only file system", "cannot create or join its cgroups"],
    ["Failed to allocate manager object: Read-only file system", "cannot create or join its cgroups"],
    ["[!!!!!!] Failed to allocate manager object.", "cannot create or join its cgroups"],
    ["systemd-journald.service: Failed at step CGROUP spawning /lib/systemd/systemd-journald: No such file or directory", "cannot create or join its cgroups"],
    ["Cannot determine cgroup we are running in: No medium found", "cannot create or join its cgroups"],
    ["Freezing execution.", "Freezing execution"],
  ])("%p: %s", (line, cause) => {
    const f = matchFatalBoot(`systemd 252.39-1~deb12u1 running in system mode\n${line}\nReached target sysinit.target\n`);
    expect(f?.cause).toContain(cause);
    expect(f?.line).toBe(line);
  });

  test.each([
    // a healthy node's only warning (the test node image, both engines)
    "[system] org.freedesktop.DBus.Error.AccessDenied: Failed to set fd limit to 65536: Operation not permitted",
    // too many open files, but not inotify's: another limit (RLIMIT_NOFILE), no known fix
    "containerd: accept4: Too many open files",
    // systemd carries on after these (a cgroup v1 hybrid host, as this machine)
    "Failed to attach 1 to compat systemd cgroup /system.slice, ignoring: No such file or directory",
    "Couldn't move remaining userspace processes, ignoring: Input/output error",
    // warnings of boots that went on: rootless Podman on Ubuntu 20.04 (podman #8545), systemd-nspawn -U with
    // CentOS 7 (systemd #6069), systemd's CI (systemd #22371)
    "Failed to create compat systemd cgroup /init.scope: Permission denied",
    "Failed to attach 1 to compat systemd cgroup /init.scope: No such file or directory",
    "system.slice: Failed to set invocation ID on control group /system.slice, ignoring: Operation not permitted",
    "system-modprobe.slice: Failed to set 'memory.limit_in_bytes' attribute on '/user.slice/user-1002.slice/user@1002.service/user.slice/podman-885477.scope/system.slice/system-modprobe.slice' to '-1': No such file or directory",
    "Failed to read pids.max attribute of root cgroup, ignoring: No data available",
    // a unit's mount that failed: systemd goes on (degraded, or maintenance, which up already reports)
    "Failed to mount sys-kernel-debug.mount - Kernel Debug File System.",
    "Failed to start systemd-remount-fs.service - Remount Root and Kernel File Systems.",
    "",
  ])("no match: %p", (line) => {
    expect(matchFatalBoot(line)).toBeUndefined();
  });

  test("the most specific cause wins over systemd's generic freeze, whatever the order of the lines", () => {
    const f = matchFatalBoot("Freezing execution.\nFailed to allocate manager object: Read-only file system\n");
    expect(f?.cause).toContain("cgroups");
  });

  test("every cause comes with a fix that says how to start the node afresh", () => {
    for (const p of FATAL_BOOT) expect(p.fix).toContain("`u7s down && u7s up`");
    expect(FATAL_BOOT[0]!.fix).toContain("sudo sysctl -w fs.inotify.max_user_instances=512");
    expect(FATAL_BOOT[0]!.fix).toContain("`u7s init-host`");
    expect(FATAL_BOOT[0]!.fix).toContain("`u7s doctor`");
  });
});
