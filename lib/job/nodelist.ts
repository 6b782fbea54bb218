import { UsageError } from "../errors.ts";

/**
 * A batch job's node list in Slurm's hostlist syntax, which Flux's hostlists share (Flux RFC 29):
 * comma-separated hosts, each with bracketed ranges and numbers, `node[01-04,07],login1`; a range's
 * lower bound sets the zero padding (`[08-10]` gives node08 node09 node10); several bracket groups
 * multiply out (`rack[1-2]-n[1-2]`, as Slurm's multi-dimensional hostlists).
 */

/** MAX_HOSTS bounds an expansion: a typo like `n[1-99999999]` is refused instead of filling memory. */
export const MAX_HOSTS = 100_000;

/** NODELIST_ENV are the variables that carry a job's node list, in the order they are read. */
export const NODELIST_ENV = ["SLURM_JOB_NODELIST", "SLURM_NODELIST", "FLUX_JOB_NODELIST"] as const;

/** splitTop splits s at the commas outside brackets; an unbalanced bracket is an error. */
function splitTop(s: string, whole: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "[") depth++;
    if (ch === "]") depth--;
    if (depth < 0 || depth > 1) throw bad(whole, depth < 0 ? "a ']' without its '['" : "nested brackets");
    if (ch === "," && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  if (depth !== 0) throw bad(whole, "a '[' without its ']'");
  parts.push(cur);
  return parts;
}

function bad(whole: string, why: string): UsageError {
  return new UsageError(`node list ${JSON.stringify(whole)}: ${why}`, {
    hint: "use Slurm's hostlist syntax, e.g. node[01-04,07],login1 (`scontrol show hostnames` expands it)",
  });
}

/** expandRanges expands the inside of one bracket group, `01-04,07`, into padded numbers. */
function expandRanges(inner: string, whole: string): string[] {
  const out: string[] = [];
  for (const item of inner.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(item.trim());
    if (!m) throw bad(whole, `${JSON.stringify(item)} is not a number or a range like 01-04`);
    const lo = m[1]!;
    const hi = m[2] ?? lo;
    const from = Number(lo);
    const to = Number(hi);
    if (to < from) throw bad(whole, `range ${item} runs backwards`);
    if (to - from + 1 > MAX_HOSTS) throw bad(whole, `range ${item} has more than ${MAX_HOSTS} hosts`);
    // Slurm pads to the lower bound's width when it has a leading zero (or to the longer bound)
    const width = lo.length > 1 && lo.startsWith("0") ? lo.length : 0;
    for (let n = from; n <= to; n++) out.push(String(n).padStart(width, "0"));
  }
  return out;
}

/** expandHostlist expands a hostlist (`node[01-04,07],login1`) into host names, in order, duplicates kept out; bad syntax is a UsageError (exit 2). */
export function expandHostlist(s: string): string[] {
  const whole = s;
  const hosts: string[] = [];
  const seen = new Set<string>();
  for (const raw of splitTop(s.trim(), whole)) {
    const part = raw.trim();
    if (part === "") {
      if (s.trim() === "") return [];
      throw bad(whole, "an empty host name");
    }
    // prefix [ranges] middle [ranges] ... suffix: multiply out left to right
    let names = [""];
    const re = /([^[\]]*)(?:\[([^\]]*)\])?/g;
    let m: RegExpExecArray | null;
    while ((m = re.exec(part)) !== null && m[0] !== "") {
      const text = m[1]!;
      if (/\s/.test(text)) throw bad(whole, `${JSON.stringify(part)} has a space in a host name`);
      const nums = m[2] === undefined ? [""] : expandRanges(m[2], whole);
      if (names.length * nums.length > MAX_HOSTS) throw bad(whole, `more than ${MAX_HOSTS} hosts`);
      names = names.flatMap((n) => nums.map((x) => n + text + x));
    }
    for (const n of names) {
      if (!seen.has(n)) {
        seen.add(n);
        hosts.push(n);
      }
    }
    if (hosts.length > MAX_HOSTS) throw bad(whole, `more than ${MAX_HOSTS} hosts`);
  }
  return hosts;
}

/**
 * controlPlaneHost is the host that brings up the control plane: --control-plane when given, else the
 * first host of the job's node list (SLURM_JOB_NODELIST, SLURM_NODELIST, FLUX_JOB_NODELIST: Slurm and
 * Flux list nodes in the same sorted order on every node); undefined when neither is there.
 */
export function controlPlaneHost(env: Readonly<Record<string, string | undefined>>, flag: string | undefined): string | undefined {
  if (flag !== undefined && flag.trim() !== "") return flag.trim();
  for (const name of NODELIST_ENV) {
    const v = env[name];
    if (v === undefined || v.trim() === "") continue;
    try {
      return expandHostlist(v)[0];
    } catch (err) {
      if (err instanceof UsageError) throw new UsageError(`${name}: ${err.message}`, { hint: "pass --control-plane HOST" });
      throw err;
    }
  }
  return undefined;
}
