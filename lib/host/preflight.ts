import type { NodeConfig } from "../config/resolve.ts";
import type { Engine, EngineInfo } from "../engine/engine.ts";
import { U7sError } from "../errors.ts";
import type { Runner } from "../exec.ts";
import type { Log } from "../log.ts";
import type { HostProbe } from "./probe.ts";
import { busyPorts } from "./ports.ts";
import { nodeNames } from "../node/names.ts";

/** Finding is one preflight result: ok, a warning (does not fail) or an error (fails, with a hint). */
export interface Finding {
  level: "ok" | "warn" | "error";
  message: string;
  hint?: string;
}

/** KERNEL_MODULES the node needs, with the kernel option that builds each in. */
export const KERNEL_MODULES: Readonly<Record<string, string>> = {
  br_netfilter: "CONFIG_BRIDGE_NETFILTER",
  ip6_tables: "CONFIG_IP6_NF_IPTABLES",
  ip6table_nat: "CONFIG_IP6_NF_NAT",
  ip_tables: "CONFIG_IP_NF_IPTABLES",
  iptable_nat: "CONFIG_IP_NF_NAT",
  vxlan: "CONFIG_VXLAN",
};

/** moduleFindings tells, per module, whether it is loaded or built in; a kernel without modules can only have them built in. */
export function moduleFindings(host: HostProbe): Finding[] {
  const loaded = new Set((host.readFile("/proc/modules") ?? "").split("\n").map((l) => l.split(" ")[0]));
  const release = host.kernelRelease();
  const builtin = host.readFile(`/lib/modules/${release}/modules.builtin`) ?? "";
  const kconfig = host.kernelConfig() ?? "";
  const modular = host.exists("/proc/modules");
  const missing: string[] = [];
  const unknown: string[] = [];
  for (const [mod, option] of Object.entries(KERNEL_MODULES)) {
    if (loaded.has(mod) || host.exists(`/sys/module/${mod}`)) continue;
    if (builtin.split("\n").some((l) => l.endsWith(`/${mod}.ko`))) continue;
    if (new RegExp(`^${option}=y$`, "m").test(kconfig)) continue;
    if (kconfig === "" && !modular) unknown.push(mod);
    else missing.push(mod);
  }
  const findings: Finding[] = [];
  if (missing.length > 0) {
    findings.push({
      level: "error",
      message: `kernel modules not loaded: ${missing.join(", ")}`,
      hint: `sudo modprobe -a ${missing.join(" ")}; to load them at boot: printf '%s\\n' ${missing.join(" ")} | sudo tee /etc/modules-load.d/usernetes.conf`,
    });
  }
  if (unknown.length > 0) {
    findings.push({ level: "warn", message: `cannot tell whether the kernel has ${unknown.join(", ")} (no loadable modules and no kernel config to read)` });
  }
  if (missing.length === 0 && unknown.length === 0) findings.push({ level: "ok", message: `kernel modules: ${Object.keys(KERNEL_MODULES).join(", ")}` });
  return findings;
}

/** cgroupFindings judges cgroups by what the node needs: fail only on what breaks, warn about lost limits. */
export function cgroupFindings(info: Pick<EngineInfo, "rootless" | "cgroupVersion">, host: HostProbe): Finding[] {
  if (!info.rootless) return [{ level: "ok", message: "cgroups: managed by a rootful engine" }];
  if (info.cgroupVersion === 1) {
    return [
      {
        level: "warn",
        message: "cgroup v1: the node boots where the engine's cgroups are delegated, but resource limits (CPU, memory) are not enforced",
        hint: "boot the host with cgroup v2 (systemd.unified_cgroup_hierarchy=1) for resource limits",
      },
    ];
  }
  const { uid } = host.user();
  const path = `/sys/fs/cgroup/user.slice/user-${uid}.slice/user@${uid}.service/cgroup.controllers`;
  const text = host.readFile(path);
  if (text === undefined) {
    return [{ level: "warn", message: `cgroup v2: cannot read ${path} to check which controllers are delegated` }];
  }
  const have = new Set(text.trim().split(/\s+/));
  const missing = ["cpu", "memory"].filter((c) => !have.has(c));
  const findings: Finding[] = [];
  const delegateHint =
    "delegate them: sudo mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf && sudo systemctl daemon-reload";
  if (missing.length > 0) findings.push({ level: "error", message: `cgroup v2 controllers not delegated to this user: ${missing.join(", ")}`, hint: delegateHint });
  if (!have.has("pids")) findings.push({ level: "warn", message: "cgroup v2 controller pids is not delegated: pod pid limits will not apply", hint: delegateHint });
  if (findings.length === 0) findings.push({ level: "ok", message: `cgroup v2 controllers delegated: ${[...have].join(" ")}` });
  return findings;
}

/** lingerFinding: without linger, a rootless engine (and the node) stops when the user logs out. */
export function lingerFinding(info: Pick<EngineInfo, "rootless">, host: HostProbe): Finding {
  if (!info.rootless) return { level: "ok", message: "linger: not needed for a rootful engine" };
  const { name } = host.user();
  if (host.exists(`/var/lib/systemd/linger/${name}`)) return { level: "ok", message: `linger enabled for ${name}` };
  if (!host.exists("/run/systemd/system")) {
    return { level: "warn", message: "systemd is not running on this host: no linger; keep the engine running yourself" };
  }
  return {
    level: "warn",
    message: `linger is not enabled for ${name}: the engine and the node stop when you log out`,
    hint: `sudo loginctl enable-linger ${name}`,
  };
}

/** restartFinding: without the engine's restart unit enabled, the node does not come back after a reboot. */
export async function restartFinding(engine: Engine, host: HostProbe, runner: Runner): Promise<Finding | undefined> {
  const unit = engine.restartUnit;
  if (unit === undefined || !host.exists("/run/systemd/system")) return undefined;
  const r = await runner(["systemctl", "--user", "is-enabled", unit]);
  if (r.exitCode === 0) return { level: "ok", message: `${unit} is enabled: the node comes back after a reboot` };
  return {
    level: "warn",
    message: `${unit} is not enabled: the node will not start again after a reboot`,
    hint: `systemctl --user enable ${unit}`,
  };
}

/** rpFilterFinding: net.ipv4.conf.default.rp_filter=1 in the engine's netns drops Flannel's VXLAN traffic. */
export async function rpFilterFinding(engine: Engine, info: Pick<EngineInfo, "rootless">, runner: Runner, runtimeDir: string | undefined): Promise<Finding> {
  const key = "/proc/sys/net/ipv4/conf/default/rp_filter";
  const argv = await engine.inEngineNetns(["cat", key], info.rootless, runtimeDir);
  if (argv === undefined) return { level: "warn", message: "cannot enter the engine's network namespace to check net.ipv4.conf.default.rp_filter" };
  const r = await runner(argv);
  const value = r.stdout.trim();
  if (r.exitCode !== 0 || !/^[0-2]$/.test(value)) {
    return { level: "warn", message: `cannot read net.ipv4.conf.default.rp_filter in the engine's network namespace (${r.stderr.trim() || "no output"})` };
  }
  if (value === "1") {
    return {
      level: "error",
      message: "net.ipv4.conf.default.rp_filter is 1 (strict) in the engine's network namespace: Flannel's VXLAN packets would be dropped",
      // A new network namespace takes its IPv4 defaults from the host's (net.core.devconf_inherit_init_net=0):
      // the engine's gets the new value when the engine starts again.
      hint: "set it to 2 (loose) on the host, `sudo sysctl -w net.ipv4.conf.default.rp_filter=2` (and in /etc/sysctl.d/ to keep it), then restart the engine so that its namespace takes the new value (usernetes#338)",
    };
  }
  return { level: "ok", message: `net.ipv4.conf.default.rp_filter is ${value} in the engine's network namespace` };
}

/** hostCgroupVersion tells the host's cgroup version as upstream's check-preflight does: v2 has /sys/fs/cgroup/cgroup.controllers. */
export function hostCgroupVersion(host: HostProbe): 1 | 2 {
  return host.exists("/sys/fs/cgroup/cgroup.controllers") ? 2 : 1;
}

/** HostChecksEnv is what hostFindings works with. */
export interface HostChecksEnv {
  engine: Engine;
  /** info: whether the engine is rootless and the cgroup version it runs on. */
  info: Pick<EngineInfo, "rootless" | "cgroupVersion">;
  host: HostProbe;
  runner: Runner;
  /** runtimeDir: XDG_RUNTIME_DIR, where a rootless engine keeps the pid that leads into its namespace. */
  runtimeDir: string | undefined;
}

/**
 * hostFindings are the checks of the host and of the engine's network namespace a node needs:
 * cgroups, linger, restart at boot, kernel modules, rp_filter. check-preflight and `up` both run them
 * (the engine's own checks and the ports each does its own way).
 */
export async function hostFindings({ engine, info, host, runner, runtimeDir }: HostChecksEnv): Promise<Finding[]> {
  // the two that run a command, at once
  const [restart, rpFilter] = await Promise.all([restartFinding(engine, host, runner), rpFilterFinding(engine, info, runner, runtimeDir)]);
  return [...cgroupFindings(info, host), lingerFinding(info, host), ...(restart ? [restart] : []), ...moduleFindings(host), rpFilter];
}

/** UpPreflightEnv is what upPreflight works with. */
export interface UpPreflightEnv {
  engine: Engine;
  host: HostProbe;
  runner: Runner;
  log: Log;
  env: Readonly<Record<string, string | undefined>>;
}

/**
 * upPreflight runs check-preflight's host checks for `up`, as upstream's `make up` depends on
 * check-preflight: warnings are printed and `up` goes on; an error stops it before anything is
 * created, with the fix. A dry run changes nothing, so it prints errors as warnings. The engine's
 * checks (rootless, answering) and the ports are up's own, not asked twice; the cgroup version
 * comes from the host (the engine's `info` costs podman 300-600 ms).
 */
export async function upPreflight({ engine, host, runner, log, env }: UpPreflightEnv, rootless: boolean, dryRun: boolean): Promise<void> {
  const findings = await hostFindings({ engine, info: { rootless, cgroupVersion: hostCgroupVersion(host) }, host, runner, runtimeDir: env.XDG_RUNTIME_DIR });
  const errors = findings.filter((f) => f.level === "error");
  for (const f of findings) {
    if (f.level === "warn") log.warn(f.message, f.hint);
    else if (f.level === "error" && dryRun) log.warn(`the preflight check would stop \`u7s up\` here: ${f.message}`, f.hint);
  }
  const [first, ...more] = errors;
  if (first === undefined || dryRun) return;
  throw new U7sError(`preflight check failed: ${first.message}`, {
    detail: more.map((f) => `also: ${f.message}${f.hint ? `\nhint: ${f.hint}` : ""}`).join("\n") || undefined,
    hint: `${first.hint ?? "see `u7s check-preflight`"}; or go on anyway with \`u7s up --skip-preflight\``,
  });
}

/** PreflightEnv is what runPreflight works with. */
export interface PreflightEnv {
  config: NodeConfig;
  engine: Engine | undefined;
  host: HostProbe;
  runner: Runner;
  env: Readonly<Record<string, string | undefined>>;
}

/** runPreflight runs upstream's checks, offline (nothing is pulled), and returns every finding. */
export async function runPreflight({ config, engine, host, runner, env }: PreflightEnv): Promise<Finding[]> {
  const findings: Finding[] = [];
  if (!engine) {
    return [{ level: "error", message: config.engineNotFound ?? "no container engine found", hint: "install rootless Docker, Podman or nerdctl, or set CONTAINER_ENGINE" }];
  }
  findings.push({ level: "ok", message: `engine: ${engine.binary} (${engine.name})` });
  let info: EngineInfo;
  try {
    info = await engine.info();
  } catch (err) {
    const e = err instanceof U7sError ? err : new U7sError(String(err));
    findings.push({ level: "error", message: e.message, hint: e.hint });
    return findings;
  }
  findings.push(
    info.rootless
      ? { level: "ok", message: `${engine.name} ${info.version} is rootless` }
      : { level: "warn", message: `${engine.name} ${info.version} is not rootless: u7s is made for rootless engines`, hint: "see https://rootlesscontaine.rs/getting-started/" },
  );
  findings.push(...(await hostFindings({ engine, info, host, runner, runtimeDir: env.XDG_RUNTIME_DIR })));
  const state = await engine.inspectContainer(nodeNames(config).container);
  if (state?.running) {
    findings.push({ level: "ok", message: `ports: held by the running node ${state.name}` });
  } else {
    const busy = await busyPorts(config, host);
    for (const b of busy) findings.push({ level: "error", message: b, hint: "stop what uses it, or choose another port (see `u7s up --help`)" });
    if (busy.length === 0) findings.push({ level: "ok", message: `ports free: ${config.portEtcd}, ${config.portKubeApiserver}, ${config.portKubelet}/tcp, ${config.portFlannel}/udp` });
  }
  return findings;
}
