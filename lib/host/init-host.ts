import { PASTA_DROP_IN, pastaDropIn, pastaHasOwnAddress } from "../engine/podman.ts";
import type { EngineName } from "../engine/types.ts";
import { U7sError } from "../errors.ts";
import { check, formatCommand, type Runner } from "../exec.ts";
import type { Log } from "../log.ts";
import {
  checkIdMap,
  checkSlirp,
  checkSubIds,
  checkUserns,
  CONTAINERS_CONF,
  DELEGATE_CONTROLLERS,
  DELEGATE_FILE,
  installArgv,
  installFix,
  MODULES_FILE,
  packagesFor,
  podmanNetworkCmd,
  podmanPastaOptions,
  PODMAN_NO_SLIRP,
  SUBID_MIN,
  freeSubIdStart,
  subIdCount,
  SYSCTL_FILE,
  type Distro,
  type Need,
} from "./doctor.ts";
import { KEYS_ADVISED } from "./keys.ts";
import { INOTIFY_LIMITS, KERNEL_MODULES } from "./preflight.ts";
import type { HostProbe } from "./probe.ts";

/** Action is one thing a host step does: run a command, write a file (through `install`), or only say something. */
export type Action = { kind: "run"; argv: string[] } | { kind: "write"; path: string; content: string } | { kind: "note"; text: string };

/** HostStep is one named step of init-host: its progress line and its actions. */
export interface HostStep {
  title: string;
  actions: Action[];
}

/** writeArgv is how a write action is applied: `install` creates parent directories and sets the mode in one command. */
export function writeArgv(path: string): string[] {
  return ["install", "-D", "-m", "0644", "/dev/stdin", path];
}

/**
 * UPSTREAM_MODULES are the kernel modules upstream's init-host.root.sh lists in the same modules-load.d
 * file (the node's iptables, kube-proxy and Flannel use them, and a rootless node cannot load modules
 * itself); KERNEL_MODULES, which preflight checks, are among them.
 */
export const UPSTREAM_MODULES = [
  "tun", "tap", "bridge", "br_netfilter", "veth", "ip_tables", "ip6_tables", "iptable_nat", "ip6table_nat", "iptable_filter", "ip6table_filter",
  "nf_tables", "x_tables", "xt_MASQUERADE", "xt_addrtype", "xt_comment", "xt_conntrack", "xt_mark", "xt_multiport", "xt_nat", "xt_tcpudp", "vxlan",
] as const;

/**
 * mergeModules adds the modules a modules-load.d file lacks, after every line it has (others' modules,
 * comments, blank lines stay as they are); undefined when nothing is missing. modprobe treats - and _
 * in a module name alike.
 */
export function mergeModules(existing: string | undefined, wanted: readonly string[]): string | undefined {
  const norm = (m: string) => m.replaceAll("-", "_");
  const text = existing ?? "";
  const have = new Set(text.split("\n").map((l) => l.replace(/[#;].*$/, "").trim()).filter(Boolean).map(norm));
  const missing = wanted.filter((m) => !have.has(norm(m)));
  if (missing.length === 0) return undefined;
  const head = text === "" ? "" : text.replace(/\n*$/, "\n");
  return `${head}${missing.join("\n")}\n`;
}

/** SysctlWant is one sysctl init-host wants in its drop-in: set to exactly this value, or raised to at least it. */
export interface SysctlWant {
  key: string;
  value: number;
  mode: "set" | "raise";
}

/**
 * mergeSysctl brings a sysctl.d file to the wanted values: a key's line is replaced only when its value
 * is not what is wanted (a raise never lowers), missing keys are added, every other line stays; undefined
 * when the file already says it all.
 */
export function mergeSysctl(existing: string | undefined, wants: readonly SysctlWant[]): string | undefined {
  const lines = existing === undefined || existing === "" ? [] : existing.replace(/\n*$/, "").split("\n");
  let changed = false;
  for (const w of wants) {
    const at = lines.findIndex((l) => l.split("=")[0]!.trim().replace(/^-/, "").replaceAll("/", ".") === w.key && !/^\s*[#;]/.test(l));
    const line = `${w.key} = ${w.value}`;
    if (at === -1) {
      lines.push(line);
      changed = true;
      continue;
    }
    const have = Number(lines[at]!.split("=").slice(1).join("=").trim());
    if (have === w.value || (w.mode === "raise" && have > w.value)) continue;
    lines[at] = line;
    changed = true;
  }
  return changed ? `${lines.join("\n")}\n` : undefined;
}

/** moduleNamesOf lists the module names in modules.dep or modules.builtin text ("kernel/net/tun.ko.xz: ..." -> tun). */
function moduleNamesOf(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split("\n")) {
    const file = line.split(":")[0]!.trim();
    const m = /([^/]+)\.ko(\.[a-z]+)?$/.exec(file);
    if (m) out.add(m[1]!.replaceAll("-", "_"));
  }
  return out;
}

/**
 * modulesToLoad splits the modules not loaded yet into those this kernel has (modules.dep, modules.builtin)
 * and those it lacks; undefined when the kernel's module lists cannot be read.
 */
export function modulesToLoad(host: HostProbe, names: readonly string[]): { load: string[]; lacking: string[] } | undefined {
  const dir = `/lib/modules/${host.kernelRelease()}`;
  const dep = host.readFile(`${dir}/modules.dep`);
  if (dep === undefined) return undefined;
  const known = new Set([...moduleNamesOf(dep), ...moduleNamesOf(host.readFile(`${dir}/modules.builtin`) ?? "")]);
  const loaded = new Set((host.readFile("/proc/modules") ?? "").split("\n").map((l) => l.split(" ")[0]!));
  const pending = names.filter((m) => !loaded.has(m) && !host.exists(`/sys/module/${m}`));
  return { load: pending.filter((m) => known.has(m.replaceAll("-", "_"))), lacking: pending.filter((m) => !known.has(m.replaceAll("-", "_"))) };
}

/** DEBIAN_DOCKER_CONTRIB is where Debian's docker.io keeps the rootless scripts (not on PATH). */
const DEBIAN_DOCKER_CONTRIB = "/usr/share/docker.io/contrib";

/** RootPlanInput is what the root plan depends on. */
export interface RootPlanInput {
  host: HostProbe;
  distro: Distro;
  engine: EngineName;
  /** user: the user who will run u7s (sub-IDs, linger); undefined skips those steps. */
  user: { name: string; uid: number } | undefined;
}

/** rootPlan lists the root-side steps (upstream's init-host.root.sh): packages, cgroup delegation, modules, sysctls, sub-IDs, linger. */
export function rootPlan({ host, distro, engine, user }: RootPlanInput): HostStep[] {
  const steps: HostStep[] = [];
  const systemd = host.exists("/run/systemd/system");
  const needs: Need[] = [engine, "uidmap", "slirp4netns", ...(distro.family === "debian" ? (["dbus-user-session"] as Need[]) : [])];
  const pkgs = packagesFor(distro.family, needs);
  const install = pkgs && installArgv(distro.family, pkgs);
  if (install) {
    const actions: Action[] = distro.family === "debian" ? [{ kind: "run", argv: ["apt-get", "update"] }] : [];
    actions.push({ kind: "run", argv: install });
    steps.push({ title: `Installing ${pkgs.join(" ")} (${install[0]})`, actions });
  } else {
    steps.push({ title: "Installing the engine's packages", actions: [{ kind: "note", text: `not done: ${installFix(distro, needs)}` }] });
  }
  if (distro.family === "debian" && engine === "docker") {
    // u7s (like upstream) detects rootless Docker by dockerd-rootless.sh on PATH; Debian keeps it in contrib/.
    steps.push({
      title: "Putting Debian's rootless Docker scripts on PATH",
      actions: ["dockerd-rootless.sh", "dockerd-rootless-setuptool.sh"].map((s) => ({ kind: "run", argv: ["ln", "-sfn", `${DEBIAN_DOCKER_CONTRIB}/${s}`, `/usr/local/bin/${s}`] })),
    });
  }
  steps.push({
    title: `Delegating cgroup controllers (${DELEGATE_CONTROLLERS.join(" ")}) to users' services`,
    actions: [
      { kind: "write", path: DELEGATE_FILE, content: `[Service]\nDelegate=${DELEGATE_CONTROLLERS.join(" ")}\n` },
      systemd ? { kind: "run", argv: ["systemctl", "daemon-reload"] } : { kind: "note", text: "systemd is not running: the drop-in applies once it is" },
    ],
  });
  // Upstream's full list, merged into the file upstream's script writes (never dropping a line of it).
  const needed = Object.keys(KERNEL_MODULES);
  const merged = mergeModules(host.readFile(MODULES_FILE), UPSTREAM_MODULES);
  const extra = UPSTREAM_MODULES.filter((m) => !needed.includes(m));
  const loadable = modulesToLoad(host, extra);
  const moduleActions: Action[] = [
    merged === undefined ? { kind: "note", text: `${MODULES_FILE} already lists upstream's ${UPSTREAM_MODULES.length} modules` } : { kind: "write", path: MODULES_FILE, content: merged },
    // the node's own modules must load now; a kernel without one fails here, as preflight would
    { kind: "run", argv: ["modprobe", "-a", ...needed] },
  ];
  if (loadable === undefined) moduleActions.push({ kind: "note", text: `cannot read /lib/modules/${host.kernelRelease()}/modules.dep: the other modules of ${MODULES_FILE} load at the next boot` });
  else {
    if (loadable.load.length > 0) moduleActions.push({ kind: "run", argv: ["modprobe", "-a", ...loadable.load] });
    if (loadable.lacking.length > 0) moduleActions.push({ kind: "note", text: `this kernel has no ${loadable.lacking.join(", ")} (listed for upstream; not loaded)` });
  }
  steps.push({ title: "Loading the node's kernel modules, now and at boot", actions: moduleActions });
  // rp_filter=2 (loose): strict reverse-path filtering drops Flannel's VXLAN packets in the engine's namespace.
  // inotify: every node of a user draws on that user's instances and watches (kind's values; never lowered);
  // so do they on the user's kernel key quota (LXD's values; never lowered).
  const current = (key: string) => Number(host.readFile(`/proc/sys/${key.replaceAll(".", "/")}`)?.trim()) || 0;
  const wants: SysctlWant[] = [
    { key: "net.ipv4.conf.default.rp_filter", value: 2, mode: "set" },
    ...INOTIFY_LIMITS.map(({ key, advised }) => ({ key, value: Math.max(advised, current(key)), mode: "raise" as const })),
    // the key quota: each node's containers and services hold keys of the user's (keys.ts)
    { key: "kernel.keys.maxkeys", value: Math.max(KEYS_ADVISED.maxkeys, current("kernel.keys.maxkeys")), mode: "raise" },
    { key: "kernel.keys.maxbytes", value: Math.max(KEYS_ADVISED.maxbytes, current("kernel.keys.maxbytes")), mode: "raise" },
  ];
  if (host.readFile("/proc/sys/kernel/unprivileged_userns_clone")?.trim() === "0") wants.push({ key: "kernel.unprivileged_userns_clone", value: 1, mode: "set" });
  if (host.readFile("/proc/sys/user/max_user_namespaces")?.trim() === "0") wants.push({ key: "user.max_user_namespaces", value: 28633, mode: "raise" });
  const sysctl = mergeSysctl(host.readFile(SYSCTL_FILE), wants);
  steps.push({
    title: "Setting sysctls (rp_filter loose for Flannel's VXLAN, inotify limits and key quota for many nodes)",
    actions: [
      sysctl === undefined ? { kind: "note", text: `${SYSCTL_FILE} already sets them` } : { kind: "write", path: SYSCTL_FILE, content: sysctl },
      { kind: "run", argv: ["sysctl", "-p", SYSCTL_FILE] },
    ],
  });
  const apparmor = checkUserns(host, engine).find((c) => c.level === "fail" && c.message.includes("AppArmor"));
  if (apparmor) {
    const program = engine === "podman" ? host.which("podman") ?? "/usr/bin/podman" : host.which("rootlesskit") ?? "/usr/bin/rootlesskit";
    const profile = `/etc/apparmor.d/${program.replace(/^\//, "").replaceAll("/", ".")}`;
    steps.push({
      title: `Allowing ${program} user namespaces under AppArmor`,
      actions: [
        { kind: "write", path: profile, content: `abi <abi/4.0>,\ninclude <tunables/global>\n\n${program} flags=(unconfined) {\n  userns,\n}\n` },
        { kind: "run", argv: ["apparmor_parser", "-r", profile] },
      ],
    });
  }
  if (!user) {
    steps.push({ title: "Sub-IDs and linger", actions: [{ kind: "note", text: "skipped: no user named (run through sudo, or pass --user NAME)" }] });
    return steps;
  }
  const subuid = host.readFile("/etc/subuid") ?? "";
  const subgid = host.readFile("/etc/subgid") ?? "";
  if (subIdCount(subuid, user) < SUBID_MIN || subIdCount(subgid, user) < SUBID_MIN) {
    const start = freeSubIdStart(subuid, subgid);
    const range = `${start}-${start + SUBID_MIN - 1}`;
    steps.push({ title: `Giving ${user.name} ${SUBID_MIN} sub-IDs (${range})`, actions: [{ kind: "run", argv: ["usermod", "--add-subuids", range, "--add-subgids", range, user.name] }] });
  }
  steps.push({
    title: `Enabling linger for ${user.name} (the engine keeps running after logout)`,
    actions: [systemd ? { kind: "run", argv: ["loginctl", "enable-linger", user.name] } : { kind: "note", text: "systemd is not running: no linger; keep the engine running yourself" }],
  });
  return steps;
}

/** UserPlanInput is what the user plan depends on. */
export interface UserPlanInput {
  host: HostProbe;
  distro: Distro;
  engine: EngineName;
  /** engineBinary: the engine's CLI (CONTAINER_ENGINE). */
  engineBinary: string;
  user: { name: string; uid: number };
  home: string | undefined;
  /** podmanVersion: `podman --version`'s number, for Podman 5's network default. */
  podmanVersion: string | undefined;
}

/** rootNeeds lists what root must do before the user steps can work (each with its fix), [] when nothing. */
export function rootNeeds({ host, distro, engine, engineBinary, user, podmanVersion }: UserPlanInput): string[] {
  // slirp4netns is root's to install for RootlessKit engines; Podman 5 and 6 network with pasta (given an address of its own by the user steps)
  const facts = engine === "podman" && podmanVersion ? { engine, engineVersion: podmanVersion, mode: undefined, source: "", tools: {} } : undefined;
  const problems = [checkSubIds(host, user), checkIdMap(host, distro), ...checkUserns(host, engine), checkSlirp(host, distro, facts)]
    .filter((c) => c.level === "fail" || (c.id === "slirp4netns" && c.level === "warn"))
    .map((c) => c.message);
  const tool = setupTool(host, engine);
  if (engine !== "podman" && tool === undefined) problems.push(`${engine === "docker" ? "dockerd-rootless-setuptool.sh" : "containerd-rootless-setuptool.sh"} not found`);
  if (engine === "podman" && host.which(engineBinary) === undefined) problems.push(`${engineBinary} not found`);
  return problems;
}

/** setupTool finds the engine's rootless setup script (Debian keeps Docker's in contrib/). */
function setupTool(host: HostProbe, engine: EngineName): string | undefined {
  if (engine === "docker") {
    return host.which("dockerd-rootless-setuptool.sh") ?? (host.exists(`${DEBIAN_DOCKER_CONTRIB}/dockerd-rootless-setuptool.sh`) ? `${DEBIAN_DOCKER_CONTRIB}/dockerd-rootless-setuptool.sh` : undefined);
  }
  if (engine === "nerdctl") return host.which("containerd-rootless-setuptool.sh");
  return undefined;
}

/** userPlan lists the user's steps (upstream's init-host.rootless.sh): set up and start the rootless engine. */
export function userPlan(input: UserPlanInput): HostStep[] {
  const { host, engine, home, podmanVersion } = input;
  const systemd = host.exists("/run/systemd/system");
  const steps: HostStep[] = [];
  if (engine === "docker" || engine === "nerdctl") {
    const tool = setupTool(host, engine) ?? `${engine === "docker" ? "dockerd" : "containerd"}-rootless-setuptool.sh`;
    steps.push({ title: `Setting up rootless ${engine === "docker" ? "Docker" : "containerd"} for ${input.user.name}`, actions: [{ kind: "run", argv: [tool, "install"] }] });
    if (engine === "docker") steps.push({ title: "Pointing the docker CLI at the rootless daemon", actions: [{ kind: "note", text: "add to your shell profile: export DOCKER_HOST=unix://$XDG_RUNTIME_DIR/docker.sock" }] });
    return steps;
  }
  // podman: no daemon. Podman 5 defaults to pasta (Podman 6 has nothing else): u7s's nodes need its
  // namespace to have an address of its own (PASTA_OWN_ADDRESS_OPTIONS), in a drop-in of u7s's own.
  // A user who chose slirp4netns in containers.conf keeps it.
  const major = Number(/^(\d+)\./.exec(podmanVersion ?? "")?.[1]);
  const conf = `${home ?? "~"}/${CONTAINERS_CONF}`;
  const text = home ? host.readFile(conf) : undefined;
  if (major >= 5 && (major >= PODMAN_NO_SLIRP || podmanNetworkCmd(text ?? "") !== "slirp4netns")) {
    const dropIn = `${home ?? "~"}/${PASTA_DROP_IN}`;
    const set = podmanPastaOptions(host, home);
    steps.push({
      title: `Giving Podman ${major}'s pasta network an address of its own (nodes reach HOST_IP through it)`,
      actions: [
        set && pastaHasOwnAddress(set.options)
          ? { kind: "note", text: `${set.file} already gives pasta an address of its own (pasta_options ${set.options.join(" ")})` }
          : { kind: "write", path: dropIn, content: pastaDropIn() },
      ],
    });
  }
  // migrate: running podman processes pick up new sub-ID ranges only after this.
  steps.push({ title: "Applying the sub-ID ranges to Podman's storage", actions: [{ kind: "run", argv: [input.engineBinary, "system", "migrate"] }] });
  steps.push({
    title: "Enabling podman-restart.service (nodes come back after a reboot)",
    actions: [systemd ? { kind: "run", argv: ["systemctl", "--user", "enable", "--now", "podman-restart.service"] } : { kind: "note", text: "systemd is not running: start nodes again after a reboot with `u7s up`" }],
  });
  return steps;
}

/** renderPlan is --dry-run's output: a shell script of the plan, each step a comment, writes as here-documents. */
export function renderPlan(steps: readonly HostStep[]): string {
  const lines: string[] = [];
  for (const s of steps) {
    lines.push(`# ${s.title}`);
    for (const a of s.actions) {
      if (a.kind === "run") lines.push(formatCommand(a.argv));
      else if (a.kind === "note") lines.push(`# ${a.text}`);
      else lines.push(`${formatCommand(writeArgv(a.path))} <<'EOF'`, a.content.replace(/\n$/, ""), "EOF");
    }
  }
  return `${lines.join("\n")}\n`;
}

/** applyPlan runs the plan's steps in order, one progress line each; the first failure stops it, naming the step. */
export async function applyPlan(steps: readonly HostStep[], runner: Runner, log: Log): Promise<void> {
  for (const s of steps) {
    const runnable = s.actions.filter((a) => a.kind !== "note");
    for (const a of s.actions) if (a.kind === "note") log.info(` - ${s.title}: ${a.text}`);
    if (runnable.length === 0) continue;
    try {
      await log.step(s.title, async () => {
        for (const a of runnable) {
          if (a.kind === "run") await check(runner, a.argv);
          else if (a.kind === "write") await check(runner, writeArgv(a.path), { input: a.content });
        }
      });
    } catch (err) {
      const e = err instanceof U7sError ? err : new U7sError(String(err));
      throw new U7sError(`${s.title} failed: ${e.message}`, { detail: e.detail, hint: "fix the cause and run `u7s init-host` again (every step is safe to repeat)", cause: err });
    }
  }
}
