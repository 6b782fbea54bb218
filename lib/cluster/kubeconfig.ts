import { mkdir, open, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { isMap, isScalar, isSeq, parseDocument, stringify, type Document } from "yaml";
import { U7sError } from "../errors.ts";

/** Kubeconfig is the part of a kubeconfig u7s reads and writes. */
interface NamedEntry {
  name: string;
  [k: string]: unknown;
}
interface KubeconfigShape {
  clusters?: NamedEntry[];
  users?: NamedEntry[];
  contexts?: NamedEntry[];
  "current-context"?: string;
}

/** SECTIONS are the named lists of a kubeconfig, in kubectl's order. */
const SECTIONS = ["clusters", "contexts", "users"] as const;

/**
 * localKubeconfig turns the node's admin.conf into one for this host: the server becomes
 * https://127.0.0.1:PORT_KUBE_APISERVER (the apiserver certificate carries 127.0.0.1), and every
 * name becomes the node's name, so it can be merged beside other clusters' entries.
 */
export function localKubeconfig(adminConf: string, port: number, name: string): string {
  let parsed: KubeconfigShape;
  try {
    parsed = parseDocument(adminConf).toJS() as KubeconfigShape;
  } catch (err) {
    throw new U7sError(`the node's admin.conf is not a kubeconfig: ${(err as Error).message}`);
  }
  const cluster = parsed.clusters?.[0]?.cluster as Record<string, unknown> | undefined;
  const user = parsed.users?.[0]?.user as Record<string, unknown> | undefined;
  if (!cluster || !user) throw new U7sError("the node's admin.conf has no cluster or no user");
  const out = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name, cluster: { ...cluster, server: `https://127.0.0.1:${port}` } }],
    users: [{ name, user }],
    contexts: [{ name, context: { cluster: name, user: name } }],
    "current-context": name,
    preferences: {},
  };
  return stringify(out, { lineWidth: 0 });
}

/** entriesOf reads one named entry of each section of a kubeconfig that u7s wrote. */
function entriesOf(kubeconfig: string, name: string): Record<(typeof SECTIONS)[number], NamedEntry> {
  const parsed = parseDocument(kubeconfig).toJS() as KubeconfigShape;
  const pick = (s: (typeof SECTIONS)[number]) => {
    const e = parsed[s]?.find((x) => x.name === name);
    if (!e) throw new U7sError(`internal: kubeconfig has no ${s} entry ${name}`);
    return e;
  };
  return { clusters: pick("clusters"), contexts: pick("contexts"), users: pick("users") };
}

/** indentBlock indents every line but the first by col spaces. */
function indentBlock(text: string, col: number): string {
  return text
    .trimEnd()
    .split("\n")
    .map((l, i) => (i === 0 || l === "" ? l : " ".repeat(col) + l))
    .join("\n");
}

function columnAt(text: string, offset: number): number {
  return offset - (text.lastIndexOf("\n", offset - 1) + 1);
}

/**
 * mergeKubeconfig adds or replaces the clusters, users and contexts entries named `name` in an
 * existing kubeconfig. It edits the text in place, so every other entry, comment and the
 * formatting stay byte-identical; current-context is set only when the file has none.
 */
export function mergeKubeconfig(existing: string, ours: string, name: string): string {
  const mine = entriesOf(ours, name);
  if (existing.trim() === "") return ours;
  const doc: Document = parseDocument(existing);
  if (doc.errors.length > 0) throw new U7sError(`cannot merge: the kubeconfig is not valid YAML: ${doc.errors[0]!.message.split("\n")[0]}`);
  if (!isMap(doc.contents)) throw new U7sError("cannot merge: the kubeconfig is not a YAML mapping");
  const edits: { at: number; end: number; text: string }[] = [];
  let fallback = false;
  for (const section of SECTIONS) {
    const seq = doc.get(section, true);
    const entry = stringify(mine[section], { lineWidth: 0 });
    if (!isSeq(seq) || seq.flow || seq.items.length === 0 || !seq.range) {
      fallback = true; // absent, empty or flow style: no block list to splice into
      continue;
    }
    const items = seq.items.filter(isMap);
    const hit = items.find((m) => m.get("name") === name);
    if (hit?.range) {
      const col = columnAt(existing, hit.range[0]);
      // A block map's range ends after its last line's newline: keep that newline.
      const nl = existing[hit.range[1] - 1] === "\n" ? "\n" : "";
      edits.push({ at: hit.range[0], end: hit.range[1], text: indentBlock(entry, col) + nl });
    } else {
      const last = items[items.length - 1];
      if (!last?.range) {
        fallback = true;
        continue;
      }
      const col = columnAt(existing, last.range[0]);
      const end = last.range[1];
      edits.push({ at: end, end, text: `${existing[end - 1] === "\n" ? "" : "\n"}${" ".repeat(col - 2)}- ${indentBlock(entry, col)}${existing[end - 1] === "\n" ? "\n" : ""}` });
    }
  }
  if (fallback) {
    // Structured edit: values are kept, but the file is re-serialized.
    for (const section of SECTIONS) {
      const seq = doc.get(section);
      const list = isSeq(seq) ? (seq.toJSON() as (NamedEntry | null)[]) : [];
      const at = list.findIndex((e) => e?.name === name); // a hand-edited list may hold an empty item
      if (at === -1) list.push(mine[section]);
      else list[at] = mine[section];
      doc.set(section, list);
    }
    const current = doc.get("current-context");
    if (current === undefined || current === null || current === "") doc.set("current-context", name);
    return doc.toString({ lineWidth: 0 });
  }
  const current = doc.get("current-context", true);
  let appendCurrent = false;
  if (!isScalar(current) || current.value === null || current.value === "") {
    // Only when the file names no current context: never switch a user's context behind their back.
    if (isScalar(current) && current.range && current.range[1] > current.range[0]) edits.push({ at: current.range[0], end: current.range[1], text: name });
    else if (!doc.has("current-context")) appendCurrent = true;
    else doc.set("current-context", name), (fallback = true);
  }
  if (fallback) return doc.toString({ lineWidth: 0 });
  let text = existing;
  for (const e of edits.sort((a, b) => b.at - a.at)) text = text.slice(0, e.at) + e.text + text.slice(e.end);
  if (appendCurrent) text = `${text}${text.endsWith("\n") ? "" : "\n"}current-context: ${name}\n`;
  return text;
}

/** KUBECONFIG_LOCK_SUFFIX is client-go's lock file suffix: kubectl and u7s never write the same kubeconfig at once. */
const KUBECONFIG_LOCK_SUFFIX = ".lock";

/**
 * withKubeconfigLock holds FILE.lock (created exclusively, as kubectl does) while fn runs; it waits
 * up to timeoutMs for another writer, then fails naming the lock file.
 */
export async function withKubeconfigLock<T>(file: string, fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const lock = `${file}${KUBECONFIG_LOCK_SUFFIX}`;
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await (await open(lock, "wx", 0o600)).close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      if (Date.now() > deadline) {
        throw new U7sError(`${file} is locked by another writer (${lock} exists)`, { hint: `if no kubectl or u7s is writing it, remove ${lock}` });
      }
      await Bun.sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}
