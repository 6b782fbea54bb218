import type { NodeConfig } from "../config/resolve.ts";
import type { Engine, EngineInfo, RootlessNetwork } from "../engine/engine.ts";
import { PASTA_DROP_IN, PASTA_OWN_ADDRESS_OPTIONS, pastaFix, pastaHasOwnAddress, pastaOptionsOf } from "../engine/podman.ts";
import type { EngineName } from "../engine/types.ts";
import { U7sError } from "../errors.ts";
import type { Runner } from "../exec.ts";
import { nodeNames } from "../node/names.ts";
import { busyPorts, portHint } from "./ports.ts";
import { keyFindings } from "./keys.ts";
import { KERNEL_MODULES, SYSCTL_FILE, engineInotifyLimits, moduleFindings, nodeInotifyFindings, restartFinding, rpFilterFinding, type Finding } from "./preflight.ts";
import type { HostProbe } from "./probe.ts";

/** Family is a distribution family: which package manager and package names its fix commands use. */
export type Family = "debian" | "fedora" | "suse" | "arch" | "unknown";

/** Distro is this host's distribution as /etc/os-release names it. */
export interface Distro {
  id: string;
  name: string;
  family: Family;
}

/** parseOsRelease reads os-release's KEY=value lines (values optionally quoted). */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    out[m[1]!] = m[2]!.replace(/^"(.*)"$/, "$1").replace(/^'(.*)'$/, "$1");
  }
  return out;
}

const FAMILY_IDS: readonly [Family, readonly string[]][] = [
  ["debian", ["debian", "ubuntu", "raspbian", "linuxmint", "pop"]],
  ["fedora", ["fedora", "rhel", "centos", "rocky", "almalinux", "ol", "amzn"]],
  ["suse", ["suse", "opensuse", "sles", "opensuse-leap", "opensuse-tumbleweed"]],
  ["arch", ["arch", "manjaro", "endeavouros"]],
];

/** detectDistro reads /etc/os-release (then /usr/lib/os-release); ID decides, else ID_LIKE. */
export function detectDistro(host: HostProbe): Distro {
  const text = host.readFile("/etc/os-release") ?? host.readFile("/usr/lib/os-release") ?? "";
  const o = parseOsRelease(text);
  const id = o.ID ?? "unknown";
  const like = (o.ID_LIKE ?? "").split(/\s+/).filter(Boolean);
  const family = FAMILY_IDS.find(([, ids]) => ids.includes(id))?.[0] ?? FAMILY_IDS.find(([, ids]) => like.some((l) => ids.includes(l)))?.[0] ?? "unknown";
  return { id, name: o.PRETTY_NAME ?? o.NAME ?? id, family };
}

/** Need is something a fix installs; PACKAGE_NAMES maps it to each family's package. */
export type Need = "uidmap" | "slirp4netns" | "dbus-user-session" | "podman" | "docker" | "nerdctl" | "kmod";

/** PACKAGE_NAMES are the packages that provide each need, per family (undefined: not packaged there). */
export const PACKAGE_NAMES: Readonly<Record<Need, Readonly<Record<Exclude<Family, "unknown">, readonly string[] | undefined>>>> = {
  uidmap: { debian: ["uidmap"], fedora: ["shadow-utils"], suse: ["shadow"], arch: ["shadow"] },
  slirp4netns: { debian: ["slirp4netns"], fedora: ["slirp4netns"], suse: ["slirp4netns"], arch: ["slirp4netns"] },
  "dbus-user-session": { debian: ["dbus-user-session"], fedora: ["dbus-daemon"], suse: ["dbus-1"], arch: ["dbus"] },
  podman: { debian: ["podman", "slirp4netns", "uidmap"], fedora: ["podman", "slirp4netns", "shadow-utils"], suse: ["podman", "slirp4netns", "shadow"], arch: ["podman", "slirp4netns", "shadow"] },
  // Debian's docker.io ships dockerd-rootless.sh in /usr/share/docker.io/contrib; rootlesskit is its own package.
  docker: { debian: ["docker.io", "rootlesskit", "slirp4netns", "uidmap", "dbus-user-session"], fedora: undefined, suse: ["docker", "docker-rootless-extras", "slirp4netns"], arch: ["docker", "docker-rootless-extras", "slirp4netns"] },
  nerdctl: { debian: ["containerd", "rootlesskit", "slirp4netns", "uidmap"], fedora: undefined, suse: ["nerdctl", "rootlesskit", "slirp4netns"], arch: ["nerdctl", "rootlesskit", "slirp4netns"] },
  kmod: { debian: ["kmod"], fedora: ["kmod", "kernel-modules"], suse: ["kmod"], arch: ["kmod"] },
};

/** packagesFor lists a family's packages for some needs, without repeats; undefined if one is not packaged. */
export function packagesFor(family: Family, needs: readonly Need[]): string[] | undefined {
  if (family === "unknown") return undefined;
  const out: string[] = [];
  for (const n of needs) {
    const p = PACKAGE_NAMES[n][family];
    if (!p) return undefined;
    for (const x of p) if (!out.includes(x)) out.push(x);
  }
  return out;
}

/** installArgv is the package manager's non-interactive install command for a family (as root, no sudo). */
export function installArgv(family: Family, packages: readonly string[]): string[] | undefined {
  switch (family) {
    case "debian":
      return ["apt-get", "install", "-y", "--no-install-recommends", ...packages];
    case "fedora":
      return ["dnf", "install", "-y", ...packages];
    case "suse":
      return ["zypper", "--non-interactive", "install", ...packages];
    case "arch":
      return ["pacman", "-S", "--needed", "--noconfirm", ...packages];
    case "unknown":
      return undefined;
  }
}

/** installFix is the exact command a user runs to install what some needs name, on this family. */
export function installFix(distro: Distro, needs: readonly Need[]): string {
  const pkgs = packagesFor(distro.family, needs);
  const argv = pkgs && installArgv(distro.family, pkgs);
  if (argv) return `sudo ${argv.join(" ")}`;
  if (distro.family === "fedora" && (needs.includes("docker") || needs.includes("nerdctl"))) {
    return "rootless Docker is not packaged by Fedora/RHEL: use Podman (`sudo dnf install -y podman slirp4netns`, then CONTAINER_ENGINE=podman), or Docker's repository: sudo dnf config-manager --add-repo https://download.docker.com/linux/fedora/docker-ce.repo && sudo dnf install -y docker-ce docker-ce-rootless-extras";
  }
  return `install ${needs.join(", ")} with ${distro.name}'s package manager`;
}

/** Level is a check's verdict: ok, warn (works, with a loss) or fail (breaks the node). */
export type Level = "ok" | "warn" | "fail";

/** Check is one doctor result: what was checked, the verdict, and the exact command that fixes it. */
export interface Check {
  /** id: a stable key for scripts (`doctor --json`), e.g. "subuid". */
  id: string;
  level: Level;
  message: string;
  /** fix: the command (or commands, `&&`-joined) that fixes it on this host; absent when ok. */
  fix?: string;
}

/** SUBID_MIN is how many subordinate IDs the node needs: a full 16-bit range, as upstream requires. */
export const SUBID_MIN = 65536;

/** subIdCount sums the subordinate ID ranges of a user (by name or uid) in /etc/subuid or /etc/subgid text. */
export function subIdCount(text: string, user: { name: string; uid: number }): number {
  let total = 0;
  for (const line of text.split("\n")) {
    const [owner, start, count] = line.trim().split(":");
    if (count === undefined || start === undefined) continue;
    if (owner !== user.name && owner !== String(user.uid)) continue;
    const n = Number(count);
    if (Number.isInteger(n) && n > 0) total += n;
  }
  return total;
}

/** freeSubIdStart is the first ID at or above 100000 past every range in the files (where a new range fits). */
export function freeSubIdStart(...texts: string[]): number {
  let next = 100000;
  for (const text of texts) {
    for (const line of text.split("\n")) {
      const [, start, count] = line.trim().split(":");
      const end = Number(start) + Number(count);
      if (Number.isInteger(end) && end > next) next = end;
    }
  }
  return next;
}

/** subIdFix adds a 65536-ID range for the user to both files (usermod exists on every family). */
export function subIdFix(host: HostProbe, user: string): string {
  const start = freeSubIdStart(host.readFile("/etc/subuid") ?? "", host.readFile("/etc/subgid") ?? "");
  const range = `${start}-${start + SUBID_MIN - 1}`;
  return `sudo usermod --add-subuids ${range} --add-subgids ${range} ${user}`;
}

/** checkSubIds: rootless engines map the node's 65536 IDs onto the user's subordinate IDs. */
export function checkSubIds(host: HostProbe, user: { name: string; uid: number }): Check {
  const uids = subIdCount(host.readFile("/etc/subuid") ?? "", user);
  const gids = subIdCount(host.readFile("/etc/subgid") ?? "", user);
  if (uids >= SUBID_MIN && gids >= SUBID_MIN) return { id: "subids", level: "ok", message: `sub-IDs: ${user.name} has ${uids} subordinate UIDs and ${gids} GIDs` };
  return {
    id: "subids",
    level: "fail",
    message: `sub-IDs: ${user.name} has ${uids} subordinate UIDs (/etc/subuid) and ${gids} GIDs (/etc/subgid); a node needs at least ${SUBID_MIN} of each`,
    fix: subIdFix(host, user.name),
  };
}

/** checkIdMap: newuidmap/newgidmap (setuid) write the sub-ID mappings for the engine. */
export function checkIdMap(host: HostProbe, distro: Distro): Check {
  const missing = ["newuidmap", "newgidmap"].filter((b) => host.which(b) === undefined && !host.exists(`/usr/bin/${b}`));
  if (missing.length === 0) return { id: "idmap", level: "ok", message: "newuidmap and newgidmap are installed" };
  return { id: "idmap", level: "fail", message: `${missing.join(" and ")} not found: rootless engines cannot map sub-IDs`, fix: installFix(distro, ["uidmap"]) };
}

export { SYSCTL_FILE } from "./preflight.ts";

/** checkUserns: unprivileged user namespaces must be allowed (Debian's old knob, max_user_namespaces, Ubuntu 24.04's AppArmor). */
export function checkUserns(host: HostProbe, engine: string | undefined): Check[] {
  const checks: Check[] = [];
  const clone = host.readFile("/proc/sys/kernel/unprivileged_userns_clone")?.trim();
  if (clone === "0") {
    checks.push({
      id: "userns",
      level: "fail",
      message: "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0)",
      fix: `sudo sysctl -w kernel.unprivileged_userns_clone=1 && echo kernel.unprivileged_userns_clone=1 | sudo tee -a ${SYSCTL_FILE}`,
    });
  }
  const max = host.readFile("/proc/sys/user/max_user_namespaces")?.trim();
  if (max === "0") {
    checks.push({
      id: "userns",
      level: "fail",
      message: "user namespaces are disabled (user.max_user_namespaces=0)",
      fix: `sudo sysctl -w user.max_user_namespaces=28633 && echo user.max_user_namespaces=28633 | sudo tee -a ${SYSCTL_FILE}`,
    });
  }
  if (host.readFile("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")?.trim() === "1") {
    // Ubuntu 24.04: only programs whose AppArmor profile says `userns,` may create user namespaces.
    const program = engine === "podman" ? host.which("podman") ?? "/usr/bin/podman" : host.which("rootlesskit") ?? "/usr/bin/rootlesskit";
    const profileName = program.replace(/^\//, "").replaceAll("/", ".");
    const profile = `/etc/apparmor.d/${profileName}`;
    if (!host.exists(profile)) {
      const body = `abi <abi/4.0>,\\ninclude <tunables/global>\\n\\n${program} flags=(unconfined) {\\n  userns,\\n}\\n`;
      checks.push({
        id: "userns",
        level: "fail",
        message: `AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1) and ${program} has no profile allowing them`,
        fix: `printf '${body}' | sudo tee ${profile} && sudo apparmor_parser -r ${profile}`,
      });
    }
  }
  if (checks.length === 0) checks.push({ id: "userns", level: "ok", message: "unprivileged user namespaces are allowed" });
  return checks;
}

/** DELEGATE_FILE is the systemd drop-in that delegates cgroup controllers to users' services. */
export const DELEGATE_FILE = "/etc/systemd/system/user@.service.d/delegate.conf";
/** DELEGATE_CONTROLLERS are what upstream delegates; cpu and memory are needed, the rest give limits. */
export const DELEGATE_CONTROLLERS = ["cpu", "cpuset", "io", "memory", "pids"] as const;

/** delegateFix writes the drop-in and reloads systemd; the user's manager picks it up at next login. */
export function delegateFix(user: string): string {
  return `sudo mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=${DELEGATE_CONTROLLERS.join(" ")}\\n' | sudo tee ${DELEGATE_FILE} && sudo systemctl daemon-reload && sudo systemctl restart user@$(id -u ${user}).service`;
}

/** checkCgroups judges delegation by what the node needs: cpu and memory must be delegated (fail), cpuset, io and pids give limits (warn). */
export function checkCgroups(host: HostProbe, user: { name: string; uid: number }): Check {
  if (!host.exists("/sys/fs/cgroup/cgroup.controllers")) {
    return {
      id: "cgroups",
      level: "warn",
      message: "cgroup v1 (or hybrid): the node boots where the engine's cgroups are delegated, but CPU and memory limits are not enforced",
      fix: "boot with cgroup v2: add systemd.unified_cgroup_hierarchy=1 to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub), update the boot loader and reboot",
    };
  }
  const path = `/sys/fs/cgroup/user.slice/user-${user.uid}.slice/user@${user.uid}.service/cgroup.controllers`;
  const text = host.readFile(path);
  if (text === undefined) {
    return { id: "cgroups", level: "warn", message: `cgroup v2: cannot read ${path} (is ${user.name} logged in through systemd?)`, fix: `sudo loginctl enable-linger ${user.name}` };
  }
  const have = new Set(text.trim().split(/\s+/));
  const missing = DELEGATE_CONTROLLERS.filter((c) => !have.has(c));
  if (missing.length === 0) return { id: "cgroups", level: "ok", message: `cgroup v2 controllers delegated: ${DELEGATE_CONTROLLERS.join(" ")}` };
  const needed = missing.filter((c) => c === "cpu" || c === "memory");
  return {
    id: "cgroups",
    level: needed.length > 0 ? "fail" : "warn",
    message: `cgroup v2 controllers not delegated to ${user.name}: ${missing.join(" ")}${needed.length > 0 ? "" : " (the node runs; those limits do not apply)"}`,
    fix: delegateFix(user.name),
  };
}

/** checkLinger: without linger the user's engine (and the node) stop at logout. */
export function checkLinger(host: HostProbe, user: string): Check {
  if (host.exists(`/var/lib/systemd/linger/${user}`)) return { id: "linger", level: "ok", message: `linger is enabled for ${user}` };
  if (!host.exists("/run/systemd/system")) {
    return { id: "linger", level: "warn", message: "systemd is not this host's init: no linger; keep the engine running yourself (the node stops with it)" };
  }
  return { id: "linger", level: "warn", message: `linger is not enabled for ${user}: the engine and the node stop when ${user} logs out`, fix: `sudo loginctl enable-linger ${user}` };
}

/** MODULES_FILE is where init-host lists the kernel modules to load at boot. */
export const MODULES_FILE = "/etc/modules-load.d/usernetes.conf";

/** checkModules: the node's kernel modules, loaded or built in (preflight's judgement, family-specific fix). */
export function checkModules(host: HostProbe, distro: Distro): Check[] {
  return moduleFindings(host).map((f) => {
    const c = fromFinding("modules", f);
    if (c.level !== "fail") return c;
    const missing = Object.keys(KERNEL_MODULES).filter((m) => f.message.includes(m));
    // tee -a: the file may list others' modules (upstream's 22, the admin's); appending never drops one
    const load = `sudo modprobe -a ${missing.join(" ")} && printf '%s\\n' ${missing.join(" ")} | sudo tee -a ${MODULES_FILE}`;
    return { ...c, fix: host.which("modprobe") ? load : `${installFix(distro, ["kmod"])} && ${load}` };
  });
}

/** checkDbus: `systemctl --user` (cgroup delegation, the engine's units) needs the user's D-Bus session bus. */
export function checkDbus(host: HostProbe, distro: Distro): Check {
  if (host.exists("/usr/lib/systemd/user/dbus.socket") || host.exists("/lib/systemd/user/dbus.socket")) {
    return { id: "dbus", level: "ok", message: "the user D-Bus session bus is installed" };
  }
  return { id: "dbus", level: "warn", message: "no user D-Bus session bus (dbus.socket): `systemctl --user` and cgroup v2 delegation to the engine do not work", fix: installFix(distro, ["dbus-user-session"]) };
}

/**
 * NetworkFacts is what doctor learned of the engine's rootless network: the mode, where that came
 * from, RootlessKit's version and the tools the engine found.
 */
export interface NetworkFacts {
  engine: EngineName;
  /** engineVersion: the engine's server version. */
  engineVersion: string;
  /** mode: slirp4netns, pasta, vpnkit, ...; undefined when nothing tells. */
  mode: string | undefined;
  /** source: how the mode is known, for the message ("podman info", "Podman 5's default", a file). */
  source: string;
  rootlesskit?: string;
  tools: { slirp4netns?: string; pasta?: string };
  /** pastaOptions: Podman's containers.conf pasta_options and the file that set them (the last one read wins). */
  pastaOptions?: { options: string[]; file: string };
}

/** majorOf is a version's first number (NaN when none). */
function majorOf(version: string): number {
  return Number(/^(\d+)\./.exec(version)?.[1]);
}

/** PODMAN_NO_SLIRP is the first Podman without slirp4netns (podman #27338, #27828). */
export const PODMAN_NO_SLIRP = 6;

/**
 * networkFacts resolves the rootless network mode: what the engine tells (podman info's
 * rootlessNetworkCmd, RootlessKit's network driver), else Podman's containers.conf, else the
 * engine's default (Podman 4: slirp4netns, Podman 5 and later: pasta).
 */
export function networkFacts(engine: EngineName, info: EngineInfo, told: RootlessNetwork, host: HostProbe, home: string | undefined): NetworkFacts {
  const pasta = engine === "podman" ? podmanPastaOptions(host, home) : undefined;
  const base = { engine, engineVersion: info.version, tools: told.tools, ...(told.rootlesskit !== undefined ? { rootlesskit: told.rootlesskit } : {}), ...(pasta ? { pastaOptions: pasta } : {}) };
  if (told.mode) return { ...base, mode: told.mode, source: engine === "podman" ? "podman info" : "RootlessKit" };
  if (engine !== "podman") return { ...base, mode: undefined, source: "" };
  const files = [...(home ? [`${home}/${CONTAINERS_CONF}`] : []), "/etc/containers/containers.conf", "/usr/share/containers/containers.conf"];
  for (const f of files) {
    const set = podmanNetworkCmd(host.readFile(f) ?? "");
    if (set) return { ...base, mode: set, source: f };
  }
  const major = majorOf(info.version);
  return { ...base, mode: major >= 5 ? "pasta" : "slirp4netns", source: Number.isNaN(major) ? "Podman's default" : `Podman ${major}'s default` };
}

/**
 * checkSlirp: the engine needs a user-mode network tool, and u7s today needs slirp4netns (rootlesskit's
 * and Podman 4's default; Podman 5 is told to use it). A host with pasta alone has a network (the
 * network check says what it means); Podman 6 has no slirp4netns to install.
 */
export function checkSlirp(host: HostProbe, distro: Distro, facts?: NetworkFacts): Check {
  const version = facts?.tools.slirp4netns;
  if (host.which("slirp4netns") || version !== undefined) return { id: "slirp4netns", level: "ok", message: `slirp4netns${version ? ` ${version}` : ""} is installed` };
  if (facts?.engine === "podman" && majorOf(facts.engineVersion) >= PODMAN_NO_SLIRP) {
    return { id: "slirp4netns", level: "ok", message: `slirp4netns: not used by podman ${facts.engineVersion} (Podman ${PODMAN_NO_SLIRP} removed it; it networks with pasta only)` };
  }
  if (facts?.engine === "podman" && (host.which("pasta") || facts.tools.pasta !== undefined)) {
    return { id: "slirp4netns", level: "ok", message: "slirp4netns not found: podman networks with pasta (see the network check)" };
  }
  if (host.which("pasta") || facts?.tools.pasta !== undefined) {
    return {
      id: "slirp4netns",
      level: "warn",
      message: "slirp4netns not found; pasta is installed, so the engine has a network, but u7s's nodes on RootlessKit need slirp4netns today (see the network check)",
      fix: installFix(distro, ["slirp4netns"]),
    };
  }
  return { id: "slirp4netns", level: "fail", message: "slirp4netns not found (nor pasta): the rootless engine has no network for the node", fix: installFix(distro, ["slirp4netns"]) };
}

/**
 * podmanPastaOptions finds pasta_options in Podman's containers.conf files, read in Podman's order
 * (containers.conf(5): system files, then the user's file, then drop-ins; a later file wins). Of the
 * drop-in directories only u7s's own file is read: HostProbe lists no directories.
 */
export function podmanPastaOptions(host: HostProbe, home: string | undefined): { options: string[]; file: string } | undefined {
  const files = ["/usr/share/containers/containers.conf", "/etc/containers/containers.conf", ...(home ? [`${home}/${CONTAINERS_CONF}`, `${home}/${PASTA_DROP_IN}`] : [])];
  let found: { options: string[]; file: string } | undefined;
  for (const file of files) {
    const options = pastaOptionsOf(host.readFile(file) ?? "");
    if (options) found = { options, file };
  }
  return found;
}

/** CONTAINERS_CONF is the user's Podman configuration (relative to HOME). */
export const CONTAINERS_CONF = ".config/containers/containers.conf";

/** podmanNetworkCmd is default_rootless_network_cmd from containers.conf text, if set. */
export function podmanNetworkCmd(text: string): string | undefined {
  return /^\s*default_rootless_network_cmd\s*=\s*["']?([a-z0-9]+)["']?/m.exec(text)?.[1];
}

/** ROOTLESSKIT_UNITS: the systemd user unit of each RootlessKit engine and the variable its rootless script reads for the network driver. */
const ROOTLESSKIT_UNITS: Readonly<Record<string, { unit: string; variable: string }>> = {
  docker: { unit: "docker.service", variable: "DOCKERD_ROOTLESS_ROOTLESSKIT_NET" },
  nerdctl: { unit: "containerd.service", variable: "CONTAINERD_ROOTLESS_ROOTLESSKIT_NET" },
};

/** slirpFix is the exact fix that makes the engine network with slirp4netns (after installing it when missing). */
export function slirpFix(facts: NetworkFacts, home: string | undefined, install: string | undefined, userConf?: string): string {
  const pre = install ? `${install} && ` : "";
  if (facts.engine === "podman") {
    const conf = `${home ?? "~"}/${CONTAINERS_CONF}`;
    const line = 'default_rootless_network_cmd = "slirp4netns"';
    // a second [network] table would make the file invalid TOML: change the key, or add it to the table
    if (userConf !== undefined && podmanNetworkCmd(userConf) !== undefined) return `${pre}sed -i 's/^\\s*default_rootless_network_cmd\\s*=.*/${line}/' ${conf}`;
    if (userConf !== undefined && /^\s*\[network\]/m.test(userConf)) return `${pre}sed -i '/^\\s*\\[network\\]/a ${line}' ${conf}`;
    return `${pre}mkdir -p ${conf.replace(/\/[^/]+$/, "")} && printf '[network]\\n${line}\\n' >> ${conf}`;
  }
  const u = ROOTLESSKIT_UNITS[facts.engine] ?? ROOTLESSKIT_UNITS.docker!;
  const dir = `${home ?? "~"}/.config/systemd/user/${u.unit}.d`;
  // restarting the daemon stops the running nodes; `--restart always` brings them back with it
  return `${pre}mkdir -p ${dir} && printf '[Service]\\nEnvironment=${u.variable}=slirp4netns\\n' > ${dir}/u7s-network.conf && systemctl --user daemon-reload && systemctl --user restart ${u.unit}`;
}

/** describeEngine names the engine with its version and RootlessKit's: "podman 5.4.2", "rootless docker 26.1.5 (RootlessKit 2.0.2)". */
function describeEngine(f: NetworkFacts): string {
  if (f.engine === "podman") return `podman ${f.engineVersion}`;
  return `rootless ${f.engine} ${f.engineVersion}${f.rootlesskit ? ` (RootlessKit ${f.rootlesskit})` : ""}`;
}

/**
 * checkNetworkMode says which rootless network the engine uses and what it means for u7s. slirp4netns:
 * what Usernetes is tested with. pasta: the engine's namespace holds the host's own address, so the API
 * server's connection to a kubelet at HOST_IP stays inside that namespace and never reaches the
 * published port (`dial tcp HOST_IP:10250: i/o timeout`, Flannel in CrashLoopBackOff: usernetes #342,
 * containers/container-libs #55); u7s does not handle pasta yet, so that fails with the switch back.
 */
export function checkNetworkMode(f: NetworkFacts, host: HostProbe, distro: Distro, home: string | undefined, portKubelet: number): Check {
  const who = describeEngine(f);
  const tool = (name: "slirp4netns" | "pasta") => (f.tools[name] ? ` ${f.tools[name]}` : "");
  const from = f.source && f.source !== "podman info" && f.source !== "RootlessKit" ? ` (${f.source})` : "";
  const slirpMissing = !host.which("slirp4netns") && f.tools.slirp4netns === undefined;
  const install = slirpMissing ? installFix(distro, ["slirp4netns"]) : undefined;
  const userConf = f.engine === "podman" && home ? host.readFile(`${home}/${CONTAINERS_CONF}`) : undefined;
  if (f.mode === "slirp4netns") {
    return { id: "network", level: "ok", message: `${who} networks rootless containers with slirp4netns${tool("slirp4netns")}${from}: the API server reaches kubelets at host IPs, as Usernetes is tested` };
  }
  if (f.mode === undefined) {
    const u = ROOTLESSKIT_UNITS[f.engine];
    return {
      id: "network",
      level: "warn",
      message: `${who}: cannot tell its rootless network (u7s needs slirp4netns; pasta breaks the API server's connections to kubelets)`,
      fix: u ? `check RootlessKit's --net= in \`ps -o args -u $(id -un) | grep rootlesskit\`; to use slirp4netns: ${slirpFix(f, home, install, userConf)}` : "check the engine's rootless network configuration",
    };
  }
  if (f.mode === "pasta" && f.engine === "podman") {
    // pasta works once its namespace has an address of its own (PASTA_OWN_ADDRESS_OPTIONS, measured on host C)
    const set = f.pastaOptions;
    if (set && pastaHasOwnAddress(set.options)) {
      return {
        id: "network",
        level: "ok",
        message: `${who} networks rootless containers with pasta${tool("pasta")}${from}, its namespace with an address of its own (pasta_options ${set.options.join(" ")} in ${set.file}): nodes reach HOST_IP's published ports and kubelets through pasta`,
      };
    }
    const why = `under pasta the engine's network namespace holds the host's own address, so the API server cannot reach a kubelet at HOST_IP:${portKubelet} (dial tcp ... i/o timeout, Flannel in CrashLoopBackOff: usernetes #342, containers/container-libs #55)`;
    const cure = `give pasta's namespace an address of its own (pasta_options ${PASTA_OWN_ADDRESS_OPTIONS.join(" ")})`;
    const podman6 = majorOf(f.engineVersion) >= PODMAN_NO_SLIRP;
    return {
      id: "network",
      level: "fail",
      message: `${who} networks rootless containers with pasta${tool("pasta")}${from}: ${why}; ${cure}${podman6 ? ` (Podman ${PODMAN_NO_SLIRP} removed slirp4netns: podman #27338, #27828)` : ", or use slirp4netns"}`,
      fix: pastaFix(home),
    };
  }
  if (f.mode === "pasta" && f.engine !== "podman" && f.rootlesskit && majorOf(f.rootlesskit) >= 2) {
    // RootlessKit runs pasta with an address of its own (tap0 10.0.2.100/24, its --cidr), unlike Podman:
    // measured on Debian 13's Docker 26.1 with RootlessKit 2.0.2 (README, host D)
    return {
      id: "network",
      level: "ok",
      message: `${who} networks rootless containers with pasta${tool("pasta")}${from}, RootlessKit giving its namespace an address of its own (10.0.2.100, --cidr): nodes reach HOST_IP's published ports and kubelets`,
    };
  }
  if (f.mode === "pasta") {
    const why = `under pasta the engine's network namespace holds the host's own address, so the API server cannot reach a kubelet at HOST_IP:${portKubelet} (dial tcp ... i/o timeout, Flannel in CrashLoopBackOff: usernetes #342, containers/container-libs #55)`;
    return {
      id: "network",
      level: "fail",
      message: `${who} networks rootless containers with pasta${tool("pasta")}${from}: ${why}; use slirp4netns`,
      fix: slirpFix(f, home, install, userConf),
    };
  }
  return {
    id: "network",
    level: "warn",
    message: `${who} networks rootless containers with ${f.mode}${from}: u7s is tested with slirp4netns only`,
    fix: slirpFix(f, home, install, userConf),
  };
}

/** IMAGE_SPACE is the free space the node image needs (~1.5 GB) plus room for Kubernetes' images in /var. */
export const IMAGE_SPACE = { fail: 2 * 2 ** 30, warn: 5 * 2 ** 30 } as const;

/** storageDir is where the engine keeps images for this user (rootless defaults). */
export function storageDir(engine: string, uid: number, home: string | undefined, dataHome: string | undefined): string {
  const data = dataHome ?? (home ? `${home}/.local/share` : undefined);
  if (uid === 0) return engine === "podman" ? "/var/lib/containers" : engine === "nerdctl" ? "/var/lib/containerd" : "/var/lib/docker";
  if (!data) return "/";
  return engine === "podman" ? `${data}/containers` : engine === "nerdctl" ? `${data}/containerd` : `${data}/docker`;
}

/** checkDisk: room for the node image where the engine stores images (the nearest existing directory). */
export function checkDisk(host: HostProbe, dir: string, freeBytes: (path: string) => number | undefined): Check {
  let at = dir;
  while (at !== "/" && !host.exists(at)) at = at.replace(/\/[^/]*$/, "") || "/";
  const free = freeBytes(at);
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (free === undefined) return { id: "disk", level: "warn", message: `cannot tell the free space in ${at}` };
  if (free >= IMAGE_SPACE.warn) return { id: "disk", level: "ok", message: `${gib(free)} free in ${at} for the node image` };
  const fix = `free space in ${at} (e.g. remove unused images: \`ENGINE system prune\`)`;
  if (free >= IMAGE_SPACE.fail) return { id: "disk", level: "warn", message: `only ${gib(free)} free in ${at}: the node image needs ~1.5 GiB and Kubernetes' images more`, fix };
  return { id: "disk", level: "fail", message: `only ${gib(free)} free in ${at}: the node image needs ~1.5 GiB`, fix };
}

/** fromFinding turns a preflight Finding into a Check (error -> fail, hint -> fix). */
export function fromFinding(id: string, f: Finding): Check {
  return { id, level: f.level === "error" ? "fail" : f.level, message: f.message, ...(f.hint && f.level !== "ok" ? { fix: f.hint } : {}) };
}

/** DoctorEnv is what runDoctor works with; every host access goes through it. */
export interface DoctorEnv {
  config: NodeConfig;
  /** engine: the configured engine's driver, undefined when none is installed. */
  engine: Engine | undefined;
  /** others: the other engines on PATH, whose nodes share this user's inotify limits. */
  others?: readonly Engine[];
  host: HostProbe;
  runner: Runner;
  env: Readonly<Record<string, string | undefined>>;
  /** freeBytes is the space available to the user in a directory's file system. */
  freeBytes(path: string): number | undefined;
}

/** DoctorReport is doctor's whole answer (also its --json output). */
export interface DoctorReport {
  ok: boolean;
  distro: Distro;
  user: string;
  engine: string | null;
  checks: Check[];
}

/** engineInstallFix says how to get the configured (or the family's recommended) engine. */
function engineInstallFix(distro: Distro, engine: string | undefined): string {
  const want = (engine === "docker" || engine === "nerdctl" ? engine : "podman") as Need;
  return `${installFix(distro, [want])}; then \`u7s init-host\` as ${want === "podman" ? "the user" : "root, then as the user"}`;
}

/** engineChecks are the checks that ask the engine (they run concurrently: each engine call costs 50-300 ms), and the network facts it told. */
async function engineChecks(d: DoctorEnv, distro: Distro): Promise<{ checks: Check[]; network?: NetworkFacts }> {
  const { config, engine, host, runner, env } = d;
  if (!engine) {
    return { checks: [{ id: "engine", level: "fail", message: config.engineNotFound ?? "no container engine found", fix: engineInstallFix(distro, config.containerEngineType) }] };
  }
  const name = nodeNames(config).container;
  const [info, restart, node] = await Promise.all([
    engine.info().then(
      (i): EngineInfo | U7sError => i,
      (e: unknown) => (e instanceof U7sError ? e : new U7sError(String(e))),
    ),
    restartFinding(engine, host, runner).catch(() => undefined),
    engine.inspectContainer(name).catch(() => undefined),
  ]);
  if (info instanceof U7sError) {
    return { checks: [{ id: "engine", level: "fail", message: info.message, ...(info.hint ? { fix: info.hint } : {}) }] };
  }
  const checks: Check[] = [];
  checks.push(
    info.rootless
      ? { id: "engine", level: "ok", message: `${engine.name} ${info.version} (${engine.binary}) is rootless` }
      : { id: "engine", level: "fail", message: `${engine.name} ${info.version} is not rootless: the node would have root's powers over this host`, fix: `u7s init-host (as ${host.user().uid === 0 ? "the user who runs u7s, not root" : "this user"}) sets up rootless ${engine.name}` },
  );
  const [rp, busy, told, inotify] = await Promise.all([
    rpFilterFinding(engine, info, runner, env.XDG_RUNTIME_DIR).catch((e: unknown) => ({ level: "warn", message: `cannot check rp_filter: ${String(e)}` }) as Finding),
    node?.running ? Promise.resolve(undefined) : busyPorts(config, host),
    engine.rootlessNetwork(info, { runtimeDir: env.XDG_RUNTIME_DIR, readFile: (p) => host.readFile(p) }).catch((): RootlessNetwork => ({ mode: undefined, tools: {} })),
    nodeInotifyFindings(engine, host, node?.running === true, true, d.others, engineInotifyLimits(engine, info.rootless, runner, env.XDG_RUNTIME_DIR)),
  ]);
  const rpCheck = fromFinding("rp_filter", rp);
  if (rpCheck.level === "fail") rpCheck.fix = `echo net.ipv4.conf.default.rp_filter=2 | sudo tee -a ${SYSCTL_FILE} && sudo sysctl -w net.ipv4.conf.default.rp_filter=2, then restart ${engine.name} (its namespace copies the value when it starts)`;
  checks.push(rpCheck);
  if (restart) checks.push(fromFinding("restart", restart));
  const network = info.rootless ? networkFacts(engine.name, info, told, host, env.HOME) : undefined;
  if (network) checks.push(checkNetworkMode(network, host, distro, env.HOME, config.portKubelet));
  if (busy === undefined) {
    checks.push({ id: "ports", level: "ok", message: `ports: held by the running node ${name}` });
  } else if (busy.length === 0) {
    checks.push({ id: "ports", level: "ok", message: `ports free: ${config.portEtcd}, ${config.portKubeApiserver}, ${config.portKubelet}/tcp, ${config.portFlannel}/udp` });
  } else {
    for (const b of busy) checks.push({ id: "ports", level: "fail", message: b, fix: portHint([b]) });
  }
  checks.push(...inotify.map((f) => fromFinding("inotify", f)));
  if (info.rootless) checks.push(...keyFindings(host, node?.running === true ? 0 : 1, true).map((f) => fromFinding("keys", f)));
  return { checks, ...(network ? { network } : {}) };
}

/** sudoUser is the unprivileged user who ran sudo (from /etc/passwd), if any. */
export function sudoUser(host: HostProbe, name: string | undefined): { name: string; uid: number } | undefined {
  if (!name || name === "root") return undefined;
  const line = (host.readFile("/etc/passwd") ?? "").split("\n").find((l) => l.startsWith(`${name}:`));
  const uid = Number(line?.split(":")[2]);
  return line && Number.isInteger(uid) ? { name, uid } : undefined;
}

/** runDoctor checks every host prerequisite, offline, and returns each verdict with its fix for this distribution. */
export async function runDoctor(d: DoctorEnv): Promise<DoctorReport> {
  const { host, env, config } = d;
  const distro = detectDistro(host);
  const user = host.user();
  const engineName = config.containerEngineType;
  const fromEngine = engineChecks(d, distro);
  const checks: Check[] = [];
  checks.push(
    distro.family === "unknown"
      ? { id: "distro", level: "warn", message: `${distro.name}: unknown distribution family; fixes name packages generically` }
      : { id: "distro", level: "ok", message: `${distro.name} (${distro.family} family)` },
  );
  // As root (through sudo), the per-user checks are for the user who ran sudo; root itself runs no rootless node.
  const who = user.uid === 0 ? sudoUser(host, env.SUDO_USER) : user;
  if (user.uid === 0) {
    checks.push({
      id: "user",
      level: "warn",
      message: `running as root: u7s runs the node in an unprivileged user's rootless engine; ${who ? `per-user checks are for ${who.name} (SUDO_USER)` : "per-user checks (sub-IDs, cgroups, linger) skipped"}`,
      fix: "run `u7s doctor` as the user who will run u7s",
    });
  }
  if (who) checks.push(checkSubIds(host, who));
  checks.push(checkIdMap(host, distro), ...checkUserns(host, engineName));
  if (who) checks.push(checkCgroups(host, who), checkLinger(host, who.name));
  checks.push(...checkModules(host, distro));
  const slirpAt = checks.length;
  if (distro.family !== "unknown") checks.push(checkDbus(host, distro));
  checks.push(checkDisk(host, storageDir(engineName ?? "podman", user.uid, env.HOME, env.XDG_DATA_HOME), d.freeBytes));
  const engine = await fromEngine;
  // slirp4netns is judged with what the engine told (pasta alone, Podman 6), in its place after the modules
  checks.splice(slirpAt, 0, checkSlirp(host, distro, engine.network));
  checks.push(...engine.checks);
  return { ok: !checks.some((c) => c.level === "fail"), distro, user: who?.name ?? user.name, engine: config.containerEngine ?? null, checks };
}
