// Label and field selectors as LIST and WATCH take them (?labelSelector=, ?fieldSelector=).
import { ApiError } from "./errors.ts";

type Op = "=" | "!=" | "in" | "notin" | "exists" | "!exists";

/** Requirement is one comma-separated term of a selector. */
interface Requirement {
  readonly key: string;
  readonly op: Op;
  readonly values: readonly string[];
}

/** Selector is a parsed labelSelector and fieldSelector; an object must meet every requirement. */
export interface Selector {
  readonly labels: readonly Requirement[];
  readonly fields: readonly Requirement[];
}

/** EVERYTHING selects every object. */
export const EVERYTHING: Selector = { labels: [], fields: [] };

/** splitTerms splits a selector at the commas outside parentheses. */
function splitTerms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((t) => t.trim()).filter((t) => t !== "");
}

function parseTerm(term: string, what: string): Requirement {
  let m = /^(\S+?)\s*(==|!=|=)\s*(\S*)$/.exec(term);
  if (m) return { key: m[1] as string, op: m[2] === "!=" ? "!=" : "=", values: [m[3] as string] };
  m = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(term);
  if (m) return { key: m[1] as string, op: m[2] as Op, values: (m[3] as string).split(",").map((v) => v.trim()) };
  m = /^(!?)([\w./-]+)$/.exec(term);
  if (m) return { key: m[2] as string, op: m[1] ? "!exists" : "exists", values: [] };
  throw new ApiError(400, "BadRequest", `unable to parse requirement: invalid ${what} selector term ${JSON.stringify(term)}`);
}

/** parseSelector parses the query's labelSelector and fieldSelector (either may be absent). */
export function parseSelector(labelSelector: string | null, fieldSelector: string | null): Selector {
  return {
    labels: splitTerms(labelSelector ?? "").map((t) => parseTerm(t, "label")),
    fields: splitTerms(fieldSelector ?? "").map((t) => {
      const r = parseTerm(t, "field");
      if (r.op !== "=" && r.op !== "!=") throw new ApiError(400, "BadRequest", `field selector ${JSON.stringify(t)}: only =, == and != are supported`);
      return r;
    }),
  };
}

function meets(r: Requirement, value: string | undefined): boolean {
  switch (r.op) {
    case "=":
      return value === r.values[0];
    case "!=":
      return value !== r.values[0];
    case "in":
      return value !== undefined && r.values.includes(value);
    case "notin":
      return value === undefined || !r.values.includes(value);
    case "exists":
      return value !== undefined;
    case "!exists":
      return value === undefined;
  }
}

/** fieldValue reads a dotted field path (metadata.name, spec.nodeName) as a string. */
function fieldValue(obj: Record<string, unknown>, path: string): string | undefined {
  let cur: unknown = obj;
  for (const part of path.split(".")) cur = typeof cur === "object" && cur !== null ? (cur as Record<string, unknown>)[part] : undefined;
  return cur === undefined || cur === null ? undefined : String(cur);
}

/** selects tells whether an object meets every requirement of a selector. */
export function selects(sel: Selector, obj: Record<string, unknown>): boolean {
  const labels = ((obj.metadata as Record<string, unknown> | undefined)?.labels ?? {}) as Record<string, string>;
  return (
    sel.labels.every((r) => meets(r, Object.hasOwn(labels, r.key) ? labels[r.key] : undefined)) &&
    // a field selector on a missing field compares against "" (metadata.namespace of a cluster object)
    sel.fields.every((r) => meets(r, fieldValue(obj, r.key) ?? ""))
  );
}
