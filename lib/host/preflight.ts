import type { NodeConfig } from "../config/resolve.ts";
import type { Engine, EngineInfo } from "../engine/engine.ts";
import { pastaFix } from "../engine/podman.ts";
import { U7sError } from "../errors.ts";
import type { Runner } from "../exec.ts";
import type { Log } from "../log.ts";
import type { HostProbe } from "./probe.ts";
import { keyFindings } from "./keys.ts";
import { busyPorts } from "./ports.ts";
import { LABEL_NODE, LABEL_SETTINGS, nodeNames } from "../node/names.ts";

/** Finding is one preflight result: ok, a warning (does not fail) or an error (fails, with a hint). */
export interface Finding {
  level: "ok" | "warn" | "error";
  message: string;
  hint?: string;
}

/** SYSCTL_FILE is the sysctl drop-in that doctor's fixes and init-host write (upstream's init-host.root.sh writes the same file). */
export const SYSCTL_FILE = "/etc/sysctl.d/99-usernetes.conf";

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
      hint: `sudo modprobe -a ${missing.join(" ")}; to load them at boot: printf '%s\\n' ${missing.join(" ")} | sudo tee -a /etc/modules-load.d/usernetes.conf`,
    });
  }
  if (unknown.length > 0) {
    findings.push({ level: "warn", message: `cannot tell whether the kernel has ${unknown.join(", ")} (no loadable modules and no kernel config to read)` });
  }
  if (missing.length === 0 && unknown.length === 0) findings.push({ level: "ok", message: `kernel modules: ${Object.keys(KERNEL_MODULES).join(", ")}` });
  return findings;
}

/**
 * INOTIFY_PER_NODE is what one booted node holds of its user's inotify limits, measured on the test
 * node image (Debian with systemd, journald, logind and D-Bus; rootless Docker and Podman alike:
 * systemd 4 instances, logind 1, dbus-daemon 1; 14 watches). A node running kubelet, containerd and
 * pods holds more: the figure is a floor, see INOTIFY_ADVISED.
 */
export const INOTIFY_PER_NODE = { instances: 6, watches: 14 } as const;

/**
 * INOTIFY_ADVISED are kind's values for hosts running Kubernetes nodes in containers
 * (https://kind.sigs.k8s.io/docs/user/known-issues/#pod-errors-due-to-too-many-open-files); init-host sets them.
 */
export const INOTIFY_ADVISED = { instances: 512, watches: 524288 } as const;

/**
 * INOTIFY_LIMITS are the per-user sysctls every node of one user shares (in the host's user namespace),
 * each with its counterpart in a user namespace (userns: /proc/sys/user, per namespace since Linux 4.9).
 * A rootless engine's nodes run in the engine's user namespace and count against both its limit and
 * the host's; a namespace starts unlimited, but its owner can lower its own.
 */
export const INOTIFY_LIMITS = [
  { key: "fs.inotify.max_user_instances", userns: "/proc/sys/user/max_inotify_instances", per: INOTIFY_PER_NODE.instances, advised: INOTIFY_ADVISED.instances },
  { key: "fs.inotify.max_user_watches", userns: "/proc/sys/user/max_inotify_watches", per: INOTIFY_PER_NODE.watches, advised: INOTIFY_ADVISED.watches },
] as const;

/** InotifyLimits are the limits of the engine's user namespace, by host sysctl name (missing: not read). */
export type InotifyLimits = Partial<Record<(typeof INOTIFY_LIMITS)[number]["key"], number>>;

/** sysctlFix raises one per-user limit now and at boot (the value init-host writes, or twice what the nodes need when more). */
export function sysctlFix(key: string, value: number): string {
  return `echo ${key}=${value} | sudo tee -a ${SYSCTL_FILE} && sudo sysctl -w ${key}=${value}`;
}

/** usernsInotifyFix raises a user namespace's own limit: only its owner, inside it, can (or the engine started afresh in a new, unlimited one). */
function usernsInotifyFix(engine: string, file: string, value: number): string {
  // Podman enters its namespace itself; rootless Docker's daemon runs inside RootlessKit's (its pid file)
  const inside = engine.startsWith("podman")
    ? "`podman unshare`"
    : engine.startsWith("docker")
      ? "`nsenter -U --preserve-credentials -t $(cat $XDG_RUNTIME_DIR/docker.pid)`"
      : "`nsenter -U --preserve-credentials -t PID` of the engine's RootlessKit child";
  return `as this user, in the engine's user namespace (${inside}): echo ${value} > ${file}; or restart the engine (a new user namespace starts unlimited)`;
}

/**
 * engineInotifyLimits reads the inotify limits of the engine's own user namespace, where its nodes'
 * processes count (one `cat` there, beside rp_filter's); nothing when it cannot be entered or read.
 */
export async function engineInotifyLimits(engine: Engine, rootless: boolean, runner: Runner, runtimeDir: string | undefined): Promise<InotifyLimits> {
  if (!rootless) return {};
  const argv = await engine.inEngineNetns(["cat", ...INOTIFY_LIMITS.map((l) => l.userns)], rootless, runtimeDir).catch(() => undefined);
  if (argv === undefined) return {};
  const r = await runner(argv).catch(() => undefined);
  const values = r?.exitCode === 0 ? r.stdout.trim().split(/\s+/) : [];
  const limits: InotifyLimits = {};
  INOTIFY_LIMITS.forEach(({ key }, i) => {
    const v = Number(values[i]);
    if (values.length === INOTIFY_LIMITS.length && Number.isInteger(v) && v >= 0) limits[key] = v;
  });
  return limits;
}

/**
 * inotifyFindings checks the user's inotify limits against the nodes the user runs plus the one
 * `up` adds (adding=1): error when the next node cannot get its share (its systemd would hang in
 * early boot: "Failed to create inotify object: Too many open files"), warning when it would be the
 * last that fits. advise (doctor) also warns below kind's advice, since real nodes hold more. The
 * limit that applies is the lower of the host's and the engine's user namespace's (userns).
 */
export function inotifyFindings(host: HostProbe, running: number, adding: 0 | 1, advise = false, engine = "the engine", userns: InotifyLimits = {}): Finding[] {
  const findings: Finding[] = [];
  for (const { key, userns: nsFile, per, advised } of INOTIFY_LIMITS) {
    const raw = host.readFile(`/proc/sys/${key.replaceAll(".", "/")}`)?.trim();
    const hostMax = Number(raw);
    if (!raw || !Number.isInteger(hostMax)) {
      findings.push({ level: "warn", message: `cannot read ${key}: not checked whether another node fits` });
      continue;
    }
    const nsMax = userns[key];
    const inNs = nsMax !== undefined && nsMax < hostMax;
    const max = inNs ? nsMax : hostMax;
    const is = inNs ? `${key} is ${max} in the engine's user namespace (its own ${nsFile}; the host's is ${hostMax})` : `${key} is ${max}`;
    const nodes = `${running} node${running === 1 ? "" : "s"} this user runs on ${engine}`;
    const left = max - running * per;
    const value = Math.max(advised, (running + adding + 1) * per * 2);
    const fix = inNs ? usernsInotifyFix(engine, nsFile, value) : sysctlFix(key, value);
    if (adding === 1 && left < per) {
      findings.push({
        level: "error",
        message: `${is}: the ${nodes} hold about ${running * per} (${per} each, measured on a bare node), so the next node cannot get its ${per} and would hang in early boot ("Failed to create inotify object: Too many open files")`,
        hint: fix,
      });
    } else if (left - adding * per < per) {
      findings.push({
        level: "warn",
        message: `${is}: with ${adding === 1 ? "this node" : "the nodes running"} (${running + adding} × about ${per}) no further node fits`,
        hint: fix,
      });
    } else if (advise && max < advised) {
      findings.push({
        level: "warn",
        message: `${is}: room for about ${Math.floor(left / per)} more bare node(s) of ${per}; a node running kubelet, containerd and pods holds more, and kind advises ${advised}`,
        hint: fix,
      });
    } else {
      findings.push({ level: "ok", message: `${is}: room for about ${Math.floor(left / per)} more node(s) beside the ${nodes} (${per} each, measured on a bare node)` });
    }
  }
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

/**
 * hostIpFinding: a node reaches HOST_IP (its own published ports, its kubelet as the API server dials
 * it at the node's ExternalIP) only if HOST_IP is not an address of the engine's own network
 * namespace. pasta copies the host's address there by default (usernetes #342,
 * containers/container-libs #55; measured on Debian 13's Podman 5.4: README, host C); slirp4netns
 * never does. Observed, not inferred from the configuration: a namespace started before the fix
 * still holds the address. Nothing when the namespace cannot be entered (rpFilterFinding says so).
 */
export async function hostIpFinding(engine: Engine, info: Pick<EngineInfo, "rootless">, runner: Runner, config: NodeConfig, home: string | undefined, runtimeDir: string | undefined): Promise<Finding | undefined> {
  const argv = await engine.inEngineNetns(["ip", "-o", "-4", "addr", "show"], info.rootless, runtimeDir);
  if (argv === undefined) return undefined;
  const r = await runner(argv);
  if (r.exitCode !== 0) return undefined;
  if (!holdsAddress(r.stdout, config.hostIp)) return { level: "ok", message: `HOST_IP ${config.hostIp} is not an address of the engine's network namespace: the node reaches it` };
  const cannot = `HOST_IP ${config.hostIp} is an address of the engine's own network namespace (pasta copies the host's): the node cannot reach HOST_IP:${config.portKubelet} (its kubelet, as the API server dials it) nor its published ports (usernetes #342, containers/container-libs #55)`;
  if (engine.name === "podman") {
    return { level: "error", message: cannot, hint: `${pastaFix(home)} (if that file is there already, Podman's namespace started before it: stop every container on a Podman network so it starts again)` };
  }
  return { level: "error", message: cannot, hint: "run the rootless daemon on slirp4netns (`u7s doctor` prints the exact drop-in)" };
}

/** holdsAddress tells whether `ip -o -4 addr show` output lists ADDR on an interface. */
export function holdsAddress(ipAddr: string, addr: string): boolean {
  return ipAddr.split("\n").some((l) => l.split(/\s+/).some((w) => w.startsWith(`${addr}/`)));
}

/** NODE_LABELS select node containers: u7s's node label and its settings (forwarders carry only the first). */
export const NODE_LABELS = [LABEL_NODE, LABEL_SETTINGS] as const;

/**
 * nodeInotifyFindings counts this user's running nodes on the engine (and on the other engines given
 * that answer as this user's rootless engines) and checks the inotify limits for one more (none when
 * this node runs), the lower of the host's and those of the engine's user namespace (userns) applying.
 */
export async function nodeInotifyFindings(engine: Engine, host: HostProbe, thisNodeRuns: boolean, advise = false, others: readonly Engine[] = [], userns: Promise<InotifyLimits> | InotifyLimits = {}): Promise<Finding[]> {
  let running: number;
  try {
    running = await engine.countRunning(NODE_LABELS);
  } catch (err) {
    return [{ level: "warn", message: `cannot count this user's running nodes for the inotify limits: ${err instanceof Error ? err.message : String(err)}` }];
  }
  // another engine counts only when it answers as a rootless engine (a rootful daemon's nodes are root's)
  const counted = [engine.name];
  const more = await Promise.all(others.map((e) => e.isRootless().then((r) => (r ? e.countRunning(NODE_LABELS) : undefined)).catch(() => undefined)));
  others.forEach((e, i) => {
    if (more[i] === undefined) return;
    running += more[i]!;
    counted.push(e.name);
  });
  return inotifyFindings(host, running, thisNodeRuns ? 0 : 1, advise, counted.join(" and "), await userns);
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
  config: NodeConfig;
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
export async function upPreflight({ config, engine, host, runner, log, env }: UpPreflightEnv, rootless: boolean, dryRun: boolean, thisNodeRuns: boolean): Promise<void> {
  // the inotify room for one more node too (none needed when this node runs already): the 22nd node
  // of a default host hangs in early boot, which `up` would otherwise only see as a timeout; and
  // HOST_IP outside the engine's namespace (pasta's default copies it there: the node could not reach it)
  const [hostChecks, inotify, hostIp] = await Promise.all([
    hostFindings({ engine, info: { rootless, cgroupVersion: hostCgroupVersion(host) }, host, runner, runtimeDir: env.XDG_RUNTIME_DIR }),
    nodeInotifyFindings(engine, host, thisNodeRuns, false, [], engineInotifyLimits(engine, rootless, runner, env.XDG_RUNTIME_DIR)),
    hostIpFinding(engine, { rootless }, runner, config, env.HOME, env.XDG_RUNTIME_DIR),
  ]);
  // and the key quota: past it the engine's runtime cannot give the node's container its session keyring
  const findings = [...hostChecks, ...inotify, ...keyFindings(host, thisNodeRuns ? 0 : 1), ...(hostIp ? [hostIp] : [])];
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
  /** others: the other engines on PATH, whose nodes share this user's inotify limits (none: only the engine's nodes count). */
  others?: readonly Engine[];
  host: HostProbe;
  runner: Runner;
  env: Readonly<Record<string, string | undefined>>;
}

/** runPreflight runs upstream's checks, offline (nothing is pulled), and returns every finding. */
export async function runPreflight({ config, engine, host, runner, env, others }: PreflightEnv): Promise<Finding[]> {
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
  const hostIp = await hostIpFinding(engine, info, runner, config, env.HOME, env.XDG_RUNTIME_DIR);
  if (hostIp) findings.push(hostIp);
  const state = await engine.inspectContainer(nodeNames(config).container);
  findings.push(...(await nodeInotifyFindings(engine, host, state?.running === true, false, others, engineInotifyLimits(engine, info.rootless, runner, env.XDG_RUNTIME_DIR))));
  if (info.rootless) findings.push(...keyFindings(host, state?.running === true ? 0 : 1));
  if (state?.running) {
    findings.push({ level: "ok", message: `ports: held by the running node ${state.name}` });
  } else {
    const busy = await busyPorts(config, host);
    for (const b of busy) findings.push({ level: "error", message: b, hint: "stop what uses it, or choose another port (see `u7s up --help`)" });
    if (busy.length === 0) findings.push({ level: "ok", message: `ports free: ${config.portEtcd}, ${config.portKubeApiserver}, ${config.portKubelet}/tcp, ${config.portFlannel}/udp` });
  }
  return findings;
}
