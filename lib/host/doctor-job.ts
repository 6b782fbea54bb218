import { accessSync, constants } from "node:fs";
import type { NodeConfig } from "../config/resolve.ts";
import { choosePrivateEngine, defaultScratchParent, findDockerdRootless } from "../engine/private.ts";
import { checkIdMap, checkSubIds, checkUserns, detectDistro, installFix, IMAGE_SPACE, sudoUser, type Check, type DoctorReport } from "./doctor.ts";
import { fsKindOf, statfs, type StatFs } from "./fs-kind.ts";
import type { HostProbe } from "./probe.ts";

/**
 * `u7s doctor --job`: whether a batch job on this host can have a cluster of its own (issue 18). A
 * job step has no systemd user session (no linger, no XDG_RUNTIME_DIR: podman #4551, flux-core #4107,
 * kind #3901) and its processes live in the job's cgroup, not a login session's (usernetes #372); u7s
 * then starts a private engine in node-local scratch. So: sub-IDs, newuidmap, user namespaces, the
 * job's own cgroup delegated, an engine u7s can start without systemd, and a scratch directory on a
 * local file system with room for the node image; the home (join file, kubeconfig) may be shared.
 */

/** JobProbe is what the job checks read beyond HostProbe: statfs(2) and write access. */
export interface JobProbe {
  statfs(path: string): StatFs;
  /** writable: access(2) W_OK for this process. */
  writable(path: string): boolean;
}

/** nodeJobProbe is the production JobProbe. */
export const nodeJobProbe: JobProbe = {
  statfs,
  writable(path) {
    try {
      accessSync(path, constants.W_OK);
      return true;
    } catch {
      return false;
    }
  },
};

/** JobDoctorEnv is what runJobDoctor works with. */
export interface JobDoctorEnv {
  config: NodeConfig;
  host: HostProbe;
  probe: JobProbe;
  env: Readonly<Record<string, string | undefined>>;
  /** scratch: --scratch, the directory scratch directories are made in (default $TMPDIR or /tmp). */
  scratch?: string;
}

/** CgroupLine is one line of /proc/PID/cgroup: hierarchy id, controllers, path. */
export interface CgroupLine {
  id: string;
  controllers: string[];
  path: string;
}

/** parseProcCgroup reads /proc/self/cgroup ("ID:CONTROLLERS:PATH" per line; cgroup v2's is "0::PATH"). */
export function parseProcCgroup(text: string): CgroupLine[] {
  return text
    .split("\n")
    .map((l) => /^(\d+):([^:]*):(.*)$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ id: m[1]!, controllers: m[2]!.split(",").filter(Boolean), path: m[3]! }));
}

/**
 * jobCgroupDirs are the directories of this process's own cgroup that a rootless node needs to write
 * (its systemd makes its cgroups below them): cgroup v2's, or on a v1 hybrid host the name=systemd and
 * unified hierarchies' (as tests/setup-engines.sh delegates them).
 */
export function jobCgroupDirs(lines: readonly CgroupLine[], host: Pick<HostProbe, "exists">): string[] {
  const unified = lines.find((l) => l.id === "0" && l.controllers.length === 0);
  if (host.exists("/sys/fs/cgroup/cgroup.controllers")) return unified ? [`/sys/fs/cgroup${unified.path.replace(/\/$/, "")}`] : [];
  const dirs: string[] = [];
  const named = lines.find((l) => l.controllers.includes("name=systemd"));
  if (named && host.exists("/sys/fs/cgroup/systemd")) dirs.push(`/sys/fs/cgroup/systemd${named.path.replace(/\/$/, "")}`);
  if (unified && host.exists("/sys/fs/cgroup/unified/cgroup.controllers")) dirs.push(`/sys/fs/cgroup/unified${unified.path.replace(/\/$/, "")}`);
  return dirs;
}

/** checkJobCgroup: this process's own cgroup (the job's, usernetes #372) must be delegated: writable, its cgroup.procs too. */
export function checkJobCgroup(host: HostProbe, probe: JobProbe, user: string): Check {
  const lines = parseProcCgroup(host.readFile("/proc/self/cgroup") ?? "");
  const dirs = jobCgroupDirs(lines, host);
  if (dirs.length === 0) return { id: "job-cgroup", level: "warn", message: "cannot tell this process's cgroup (/proc/self/cgroup)" };
  const notDelegated = dirs.filter((d) => !probe.writable(d) || !probe.writable(`${d}/cgroup.procs`));
  if (notDelegated.length === 0) {
    const v2 = host.exists("/sys/fs/cgroup/cgroup.controllers");
    const controllers = v2 ? (host.readFile(`${dirs[0]}/cgroup.controllers`) ?? "").trim() : "";
    return {
      id: "job-cgroup",
      level: "ok",
      message: `this job's cgroup is delegated to ${user}: ${dirs.join(", ")}${v2 ? ` (controllers: ${controllers || "none"})` : ""}`,
    };
  }
  return {
    id: "job-cgroup",
    level: "fail",
    message: `this job's own cgroup is not delegated to ${user}: ${notDelegated.join(", ")} not writable; a node's systemd cannot make its cgroups there (a batch job's cgroup is the scheduler's, not a login session's: usernetes #372)`,
    fix: "ask the cluster's administrators to delegate the job's cgroup to the job's user (cgroup v2: chown the job's cgroup directory and its cgroup.procs, cgroup.subtree_control, cgroup.threads to the user, as systemd's Delegate=yes does), or run the job step under `systemd-run --user --scope -p Delegate=yes` where a user manager runs",
  };
}

/** checkPrivateEngine: the engine u7s would start for the job, without systemd (dockerd-rootless.sh with RootlessKit, or Podman). */
export function checkPrivateEngine(host: HostProbe, config: NodeConfig, distro: ReturnType<typeof detectDistro>): Check {
  const lstat = (p: string) => (host.exists(p) ? { dir: false, symlink: false, uid: 0 } : undefined);
  const engine = choosePrivateEngine({ which: (b) => host.which(b), lstat }, config.containerEngine);
  if (engine === "docker") {
    const script = findDockerdRootless({ which: (b) => host.which(b), lstat });
    const missing = [script ? undefined : "dockerd-rootless.sh", host.which("rootlesskit") ? undefined : "rootlesskit", host.which("docker") ? undefined : "docker"].filter((x): x is string => x !== undefined);
    if (missing.length === 0) return { id: "job-engine", level: "ok", message: `a private rootless Docker can start without systemd: ${script} (RootlessKit ${host.which("rootlesskit")})` };
    return { id: "job-engine", level: "fail", message: `a private rootless Docker cannot start: ${missing.join(", ")} not found`, fix: installFix(distro, ["docker"]) };
  }
  if (engine === "podman") return { id: "job-engine", level: "ok", message: `a private Podman needs no daemon: ${host.which("podman") ?? "podman"}` };
  return { id: "job-engine", level: "fail", message: "no engine u7s can start for the job: neither dockerd-rootless.sh with docker nor podman found", fix: installFix(distro, ["podman"]) };
}

const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;

/** checkScratch: the scratch directory must be on node-local disk (statfs magic, not NFS/Lustre/GPFS...), writable, with room for the node image. */
export function checkScratch(probe: JobProbe, dir: string): Check[] {
  let st: StatFs;
  try {
    st = probe.statfs(dir);
  } catch (e) {
    return [{ id: "job-scratch", level: "fail", message: `scratch directory ${dir}: ${e instanceof Error ? e.message : String(e)}`, fix: `mkdir -p ${dir}, or pass --scratch DIR on node-local disk` }];
  }
  const kind = fsKindOf(st.magic);
  const checks: Check[] = [];
  if (kind.shared) {
    checks.push({
      id: "job-scratch",
      level: "fail",
      message: `scratch directory ${dir} is on ${kind.name}, shared between hosts: container storage there fails (overlay, sub-IDs' file ownership: podman #7091, #9416)`,
      fix: "pass --scratch on node-local disk (/tmp, the job's $TMPDIR, or the site's local scratch; `df -T DIR` shows the file system)",
    });
  } else if (!probe.writable(dir)) {
    checks.push({ id: "job-scratch", level: "fail", message: `scratch directory ${dir} (${kind.name}) is not writable for this user`, fix: "pass --scratch DIR on node-local disk that you can write" });
  } else {
    checks.push({ id: "job-scratch", level: "ok", message: `scratch directory ${dir} is on ${kind.name} (node-local)` });
  }
  const free = st.availableBytes;
  if (free >= IMAGE_SPACE.warn) checks.push({ id: "job-scratch-space", level: "ok", message: `${gib(free)} free in ${dir} for the private engine and the node image` });
  else {
    checks.push({
      id: "job-scratch-space",
      level: free >= IMAGE_SPACE.fail ? "warn" : "fail",
      message: `only ${gib(free)} free in ${dir}: the node image needs ~1.5 GiB in the private engine${free >= IMAGE_SPACE.fail ? ", Kubernetes' images more" : ""}`,
      fix: "pass --scratch on a node-local disk with more room",
    });
  }
  return checks;
}

/** checkHome: the home may be shared (it carries the join file and the kubeconfig between the job's hosts); said either way. */
export function checkHome(probe: JobProbe, home: string | undefined): Check {
  if (!home) return { id: "job-home", level: "fail", message: "HOME is not set: u7s keeps the job's join file and kubeconfig there", fix: "set HOME (every host of the job must see the same one)" };
  try {
    const kind = fsKindOf(probe.statfs(home).magic);
    return {
      id: "job-home",
      level: "ok",
      message: kind.shared
        ? `home ${home} is on ${kind.name}, shared between hosts: the join file and kubeconfig reach every host of the job (container storage stays in scratch)`
        : `home ${home} is on ${kind.name}: the job's other hosts must see the same home for the join file (a single-host job needs nothing more)`,
    };
  } catch (e) {
    return { id: "job-home", level: "fail", message: `home ${home}: ${e instanceof Error ? e.message : String(e)}`, fix: "set HOME to the user's home" };
  }
}

/** checkRuntimeDir: without a login session there is no XDG_RUNTIME_DIR; the private engine makes its own either way. */
export function checkRuntimeDir(env: Readonly<Record<string, string | undefined>>): Check {
  const dir = env.XDG_RUNTIME_DIR;
  return {
    id: "job-runtime-dir",
    level: "ok",
    message: dir
      ? `XDG_RUNTIME_DIR=${dir}; a private engine keeps its own (0700) in the scratch directory`
      : "no XDG_RUNTIME_DIR (no systemd user session, as in a batch job): a private engine gets its own (0700) in the scratch directory",
  };
}

/** runJobDoctor checks, for this host, whether `u7s up --job` can bring up a node here. */
export async function runJobDoctor(d: JobDoctorEnv): Promise<DoctorReport & { host: string; scratch: string }> {
  const { host, env, config, probe } = d;
  const distro = detectDistro(host);
  const user = host.user();
  const who = user.uid === 0 ? sudoUser(host, env.SUDO_USER) : user;
  const scratch = d.scratch ?? defaultScratchParent(env);
  const checks: Check[] = [{ id: "job-host", level: "ok", message: `host ${host.hostname()}: checks for a batch job's cluster (u7s up --job)` }];
  if (user.uid === 0) checks.push({ id: "user", level: "warn", message: "running as root: a job's cluster runs as the job's user", fix: "run `u7s doctor --job` inside the job, as its user" });
  if (who) checks.push(checkSubIds(host, who));
  checks.push(checkIdMap(host, distro), ...checkUserns(host, config.containerEngineType));
  checks.push(checkJobCgroup(host, probe, who?.name ?? user.name));
  checks.push(checkPrivateEngine(host, config, distro));
  checks.push(...checkScratch(probe, scratch), checkHome(probe, env.HOME), checkRuntimeDir(env));
  return { ok: !checks.some((c) => c.level === "fail"), distro, user: who?.name ?? user.name, engine: config.containerEngine ?? null, host: host.hostname(), scratch, checks };
}
