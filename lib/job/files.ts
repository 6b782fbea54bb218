// Where a batch job's cluster keeps its files: a job directory in the (shared) home for what hosts
// tell each other (the control plane's join file, kubeconfig and failure marker, each host's
// "Ready" mark), and a scratch directory on each host's node-local disk for everything else (the
// private engine, the node's own u7s state, the job's state for a later `u7s down --job`).
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm, rmdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { errnoText, U7sError, UsageError } from "../errors.ts";
import { MAX_TENANT } from "../config/tenant.ts";
import { writeFileAtomic } from "../state/files.ts";
import { defaultScratchParent, scratchDir as privateScratchDir } from "../engine/private.ts";
import { expandHostlist, NODELIST_ENV } from "./nodelist.ts";

/** JOB_ID_VARS are the variables a job id is read from, first set wins (after --job-id). */
export const JOB_ID_VARS = ["U7S_JOB_ID", "SLURM_JOB_ID", "FLUX_JOB_ID"] as const;

/** JOB_ID_VALID says what a job id may look like. */
const JOB_ID_VALID = "valid: 1-64 letters, digits, '.', '_' or '-', e.g. Slurm's 12345 or Flux's f2Nk9eR4";

/**
 * normalizeJobId turns a scheduler's job id into a path segment: Flux prints its ids in F58 with a
 * leading "ƒ" (U+0192), which becomes "f"; anything else outside [A-Za-z0-9._-] is refused.
 * Slurm's array jobs (12345_7) and het jobs (12345+0) keep their digits.
 */
export function normalizeJobId(raw: string): string | undefined {
  const id = raw.trim().replace(/^ƒ/, "f").replace(/\+/g, "_");
  return /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,64}$/.test(id) ? id : undefined;
}

/** jobIdFrom reads the job id: --job-id, else U7S_JOB_ID, SLURM_JOB_ID, FLUX_JOB_ID; a UsageError when none (or a bad one) is there. */
export function jobIdFrom(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  const [source, raw] =
    flag !== undefined ? ["--job-id", flag] : (JOB_ID_VARS.map((v) => [v, env[v]] as const).find(([, v]) => v !== undefined && v.trim() !== "") ?? [undefined, undefined]);
  if (source === undefined || raw === undefined) {
    throw new UsageError(`--job: no job id (none of ${JOB_ID_VARS.join(", ")} is set, and no --job-id)`, {
      hint: "run it inside a Slurm or Flux job (srun / flux run), or give --job-id ID: every host of one cluster must use the same id",
    });
  }
  const id = normalizeJobId(raw);
  if (id === undefined) throw new UsageError(`${source}=${JSON.stringify(raw)}: not a job id u7s can use (${JOB_ID_VALID})`);
  return id;
}

/**
 * jobTenant is the tenant a job's nodes use unless U7S_TENANT / --tenant says otherwise: 1..MAX_TENANT
 * from the job id (a numeric id modulo 99, plus 1; another id by its SHA-256), the same on every host
 * of the job. So two jobs of one user on one host (or of two users sharing a node) get other ports,
 * names and subnets unless their ids are 99 apart; `up` refuses busy ports before creating anything.
 */
export function jobTenant(jobId: string): number {
  const digits = /^[0-9]+/.exec(jobId)?.[0];
  if (digits !== undefined && digits === jobId) return Number(BigInt(digits) % BigInt(MAX_TENANT)) + 1;
  const h = new Bun.CryptoHasher("sha256").update(jobId).digest();
  return (h.readUInt32BE(0) % MAX_TENANT) + 1;
}

/**
 * jobNodeSubnet is NODE_SUBNET for this host in a job: 10.(100+tenant).I.0/24, I its place in the job's
 * node list (0..255). The host-name hash gives only 256 subnets, so in a job of 64 nodes a worker
 * would share the control plane's (and be refused) about one time in five; the place in the list
 * never repeats. Undefined (the hash's subnet then) when this host is not in the list, or past 256.
 */
export function jobNodeSubnet(env: Readonly<Record<string, string | undefined>>, host: string, tenant: number): string | undefined {
  for (const name of NODELIST_ENV) {
    const v = env[name];
    if (v === undefined || v.trim() === "") continue;
    let hosts: string[];
    try {
      hosts = expandHostlist(v);
    } catch {
      return undefined; // a list u7s cannot read names no control plane either: that error comes from there
    }
    const i = hosts.findIndex((h) => isThisHost(h, host, env));
    return i >= 0 && i <= 255 ? `10.${100 + tenant}.${i}.0/24` : undefined;
  }
  return undefined;
}

/** JobPaths are the job's files in the shared home (the control plane writes them; workers read them). */
export interface JobPaths {
  /** dir: $XDG_STATE_HOME/u7s/jobs/JOB_ID, mode 0700. */
  dir: string;
  /** joinFile: the control plane's join file (0600), written once its node is Ready. */
  joinFile: string;
  /** kubeconfig: the admin kubeconfig (0600), pointing at the control plane's HOST_IP: usable from every host of the job. */
  kubeconfig: string;
  /** failed: the control plane's failure marker (JSON: host, reason); workers stop waiting and exit with its reason. */
  failed: string;
  /** readyDir: one empty file per host whose node is Ready (ready/HOST). */
  readyDir: string;
  /** meta: which directories above dir the control plane created (removed again with the job, when empty). */
  meta: string;
}

/** JOB_DIR_PARTS is the job directory below XDG_STATE_HOME: u7s/jobs/JOB_ID. */
export function jobPaths(stateHome: string, jobId: string): JobPaths {
  const dir = join(stateHome, "u7s", "jobs", jobId);
  return {
    dir,
    joinFile: join(dir, "join.json"),
    kubeconfig: join(dir, "kubeconfig"),
    failed: join(dir, "failed.json"),
    readyDir: join(dir, "ready"),
    meta: join(dir, "job.json"),
  };
}

/** stateHomeOf is $XDG_STATE_HOME when absolute, else $HOME/.local/state (as lib/state/paths.ts reads it). */
export function stateHomeOf(env: Readonly<Record<string, string | undefined>>): string {
  const v = env.XDG_STATE_HOME;
  if (v !== undefined && v.startsWith("/")) return v;
  if (!env.HOME) throw new U7sError("neither XDG_STATE_HOME nor HOME is set: u7s cannot place the job's files", { hint: "set HOME (the home directory all hosts of the job share)" });
  return join(env.HOME, ".local", "state");
}

/** shortHost is a host name up to its first dot: schedulers list short names, `hostname` may print the full one. */
export function shortHost(host: string): string {
  return host.split(".")[0]!;
}

/**
 * isThisHost tells whether a name from the job's node list (or --control-plane) is this host: its
 * `hostname`, or SLURMD_NODENAME, the name Slurm gives this node in a job step (slurm.conf's NodeName
 * may differ from the machine's host name).
 */
export function isThisHost(name: string, host: string, env: Readonly<Record<string, string | undefined>>): boolean {
  return sameHost(name, host) || (env.SLURMD_NODENAME !== undefined && env.SLURMD_NODENAME !== "" && sameHost(name, env.SLURMD_NODENAME));
}

/** sameHost tells whether two host names mean the same host (equal, or equal up to the first dot). */
export function sameHost(a: string, b: string): boolean {
  return a === b || shortHost(a) === shortHost(b);
}

/**
 * scratchDir is this job's directory on node-local disk: BASE/u7s-UID-HOST-JOBID (the private
 * engine's scratchDir, with the host's short name). The uid and host keep users and hosts apart
 * should BASE be shared after all; the job id keeps two jobs of one user on one host apart.
 */
export function scratchDir(base: string, uid: number, host: string, jobId: string): string {
  return privateScratchDir(base.replace(/(.)\/+$/, "$1"), uid, shortHost(host), jobId);
}

/** scratchBase is --scratch (an absolute path), else $TMPDIR (a batch system's per-job node-local directory), else /tmp. */
export function scratchBase(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  if (flag === undefined) return defaultScratchParent(env);
  if (!flag.startsWith("/")) throw new UsageError(`--scratch=${JSON.stringify(flag)}: not an absolute path (valid: a directory on node-local disk, e.g. /tmp or /local/scratch)`);
  return flag;
}

/** JobState is what a host records in its scratch directory for a later `u7s down --job` (after SIGKILL, from an epilog). */
export interface JobState {
  kind: "u7s-job";
  version: 1;
  jobId: string;
  host: string;
  role: "control-plane" | "worker";
  /** pid: the foreground `u7s up --job` process. */
  pid: number;
  /** tenant and nodeName: the node this host runs for the job. */
  tenant: number;
  nodeName: string;
  /** engine: the engine kind; privateEngine: u7s started it (stopped with the job). */
  engine: string;
  privateEngine: boolean;
  /** jobDir: the shared job directory. */
  jobDir: string;
  started: string;
}

/** JOB_STATE_FILE is the JobState's name in the scratch directory. */
export const JOB_STATE_FILE = "job.json";

/** writeJobState records the job's state in the scratch directory (0600, atomically). */
export async function writeJobState(scratch: string, state: JobState): Promise<void> {
  await writeFileAtomic(join(scratch, JOB_STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
}

/** readJobState reads the job's state from a scratch directory; undefined when there is none (or it is not one). */
export async function readJobState(scratch: string): Promise<JobState | undefined> {
  let text: string;
  try {
    text = await readFile(join(scratch, JOB_STATE_FILE), "utf8");
  } catch {
    return undefined;
  }
  try {
    const s = JSON.parse(text) as JobState;
    return s.kind === "u7s-job" && typeof s.nodeName === "string" && typeof s.jobDir === "string" ? s : undefined;
  } catch {
    return undefined;
  }
}

/** JobFailure is the control plane's failure marker: which host failed and why. */
export interface JobFailure {
  host: string;
  reason: string;
  time: string;
}

/** writeFailure writes the control plane's failure marker (0600, atomically) for the workers waiting for its join file. */
export async function writeFailure(paths: JobPaths, f: JobFailure): Promise<void> {
  await writeFileAtomic(paths.failed, `${JSON.stringify(f)}\n`);
}

/** parseFailure reads a failure marker; one that is not JSON still carries its text as the reason. */
export function parseFailure(text: string): JobFailure {
  try {
    const f = JSON.parse(text) as Partial<JobFailure>;
    return { host: String(f.host ?? "?"), reason: String(f.reason ?? text.trim()), time: String(f.time ?? "") };
  } catch {
    return { host: "?", reason: text.trim(), time: "" };
  }
}

/** JobMeta is what the control plane records in the job directory: the directories above it that it created (read from earlier versions; the shared record below holds them now). */
interface JobMeta {
  jobId: string;
  controlPlane: string;
  createdDirs: string[];
}

/**
 * MADE_RECORD is the file, in the jobs directory ($XDG_STATE_HOME/u7s/jobs), that names the directories
 * u7s made for jobs: that one and those above it that were not there. It belongs to every job, not to the
 * one that happened to make them: two jobs start at once, the one that made the directories may end first,
 * and the last job to leave removes them (the shared home as it was before any job).
 */
export const MADE_RECORD = ".u7s-made.json";

/**
 * makeJobDir creates the job directory (0700) and records, in the jobs directory, which of its parents
 * did not exist before, so that removeJobDir leaves the home as it found it. Files of an earlier run of
 * the same job id (a join file, a failure marker) are removed first: a worker must not join a dead cluster.
 */
export async function makeJobDir(paths: JobPaths, jobId: string, controlPlane: string): Promise<void> {
  const created = await makeDirs(paths.dir);
  const above = created.filter((d) => d !== paths.dir);
  if (above.length > 0) {
    const record = join(dirname(paths.dir), MADE_RECORD);
    const dirs = [...new Set([...(await readMade(record)), ...above])];
    await writeFileAtomic(record, `${JSON.stringify({ dirs }, null, 2)}\n`);
  }
  const old = await readMeta(paths);
  for (const f of [paths.joinFile, paths.failed, paths.kubeconfig]) await rm(f, { force: true });
  await rm(paths.readyDir, { recursive: true, force: true });
  await mkdir(paths.readyDir, { mode: 0o700 });
  const meta: JobMeta = { jobId, controlPlane, createdDirs: old?.createdDirs ?? [] };
  await writeFileAtomic(paths.meta, `${JSON.stringify(meta, null, 2)}\n`);
}

/**
 * makeDirs creates dir and its missing parents (0700) and returns those it created, top first. A parent
 * another job's removeJobDir takes away meanwhile (ENOENT) starts it over, a few times. mk: mkdir, for tests.
 */
export async function makeDirs(dir: string, mk: (d: string, opts: { mode: number }) => Promise<unknown> = mkdir): Promise<string[]> {
  const created: string[] = [];
  for (let attempt = 1; ; attempt++) {
    const missing: string[] = [];
    for (let d = dir; ; d = dirname(d)) {
      if (await isDir(d)) break;
      missing.unshift(d);
      if (dirname(d) === d) break;
    }
    try {
      for (const d of missing) {
        try {
          await mk(d, { mode: 0o700 });
          created.push(d);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        }
      }
      return created;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT" && attempt < 5) continue;
      throw new U7sError(`cannot create ${dir}: ${errnoText(err)}`);
    }
  }
}

/** readMade reads the jobs directory's record of the directories u7s made; none when it is missing or not u7s's. */
async function readMade(record: string): Promise<string[]> {
  try {
    const m = JSON.parse(await readFile(record, "utf8")) as { dirs?: unknown };
    return Array.isArray(m.dirs) ? m.dirs.filter((d): d is string => typeof d === "string") : [];
  } catch {
    return [];
  }
}

/** jobDirExists tells whether the job directory (with its record) is still there. */
export async function jobDirExists(paths: JobPaths): Promise<boolean> {
  return (await isDir(paths.dir)) && (await readMeta(paths)) !== undefined;
}

async function isDir(path: string): Promise<boolean> {
  try {
    await readdir(path);
    return true;
  } catch {
    return false;
  }
}

async function readMeta(paths: JobPaths): Promise<JobMeta | undefined> {
  try {
    const m = JSON.parse(await readFile(paths.meta, "utf8")) as JobMeta;
    return Array.isArray(m.createdDirs) ? m : undefined;
  } catch {
    return undefined;
  }
}

/**
 * removeJobDir removes the job directory and its files. When it was the last job there (the jobs
 * directory holds nothing else but the record), it removes the directories u7s made for jobs, deepest
 * first and only when empty (rmdir: what someone else put there keeps them), and the record with them;
 * also those an earlier version recorded in the job's own file. It tells whether there was a job directory.
 */
export async function removeJobDir(paths: JobPaths): Promise<boolean> {
  const meta = await readMeta(paths);
  const had = await isDir(paths.dir);
  await rm(paths.dir, { recursive: true, force: true });
  const jobs = dirname(paths.dir);
  const record = join(jobs, MADE_RECORD);
  const others = (await readdir(jobs).catch(() => [] as string[])).filter((n) => n !== MADE_RECORD);
  if (others.length > 0) return had; // another job's directory: the last job to leave removes them
  const made = await readMade(record);
  await rm(record, { force: true });
  for (const d of [...new Set([...made, ...(meta?.createdDirs ?? [])])].sort((a, b) => b.length - a.length)) {
    if (!paths.dir.startsWith(`${d}/`)) continue; // only directories above this job's
    await rmdir(d).catch(() => undefined);
  }
  return had;
}

/**
 * markReady writes ready/HOST in the job directory without creating any directory: once the control
 * plane removed the job directory (the job ends), a late mark must not bring it back.
 */
export async function markReady(paths: JobPaths, host: string): Promise<void> {
  const file = join(paths.readyDir, shortHost(host));
  const tmp = join(paths.readyDir, `.${shortHost(host)}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    await (await open(tmp, "wx", 0o600)).close();
    await rename(tmp, file);
  } catch {
    await rm(tmp, { force: true }).catch(() => undefined);
  }
}

/** unmarkReady removes this host's ready mark (its node goes down). */
export async function unmarkReady(paths: JobPaths, host: string): Promise<void> {
  await rm(join(paths.readyDir, shortHost(host)), { force: true }).catch(() => undefined);
}

/** readyHosts lists the hosts whose node is Ready (a fresh readdir: on NFS a directory read revalidates what a cached stat would not). */
export async function readyHosts(paths: JobPaths): Promise<string[]> {
  return (await readdir(paths.readyDir).catch(() => [] as string[])).filter((n) => !n.startsWith(".")).sort();
}
