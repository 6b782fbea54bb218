import { lstat, mkdir, open, readlink, rm } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { isMap, isScalar, isSeq, parseDocument, stringify, type Document, type YAMLMap, type YAMLSeq } from "yaml";
import { U7sError, UsageError } from "../errors.ts";

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
export function mergeKubeconfig(existing: string, ours: string, name: string, file?: string): string {
  const mine = entriesOf(ours, name);
  if (existing.trim() === "") return ours;
  const doc = parseKubeconfigText(existing, `cannot merge into ${file ?? "the kubeconfig"}`);
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

/** parseKubeconfigText parses a user's kubeconfig for a text edit; a file that is not a YAML mapping is a U7sError starting with doing. */
function parseKubeconfigText(existing: string, doing: string): Document {
  const doc: Document = parseDocument(existing);
  if (doc.errors.length > 0) throw new U7sError(`${doing}: it is not valid YAML: ${doc.errors[0]!.message.split("\n")[0]}`);
  if (!isMap(doc.contents)) throw new U7sError(`${doing}: it is not a YAML mapping`);
  return doc;
}

/** SECTION_ENTRY is the key under which each section's entry holds its value. */
const SECTION_ENTRY = { clusters: "cluster", contexts: "context", users: "user" } as const;

/**
 * writtenByU7s tells whether a section's entry is exactly as localKubeconfig writes it for node
 * `name` with apiserver port `port`: the same keys and nothing else (no namespace, proxy, exec or
 * token a user added), pointing at this node. Only such entries are u7s's to remove.
 */
function writtenByU7s(section: (typeof SECTIONS)[number], entry: Record<string, unknown>, name: string, port: number): boolean {
  const keys = (o: object) => Object.keys(o).sort().join(",");
  const v = entry[SECTION_ENTRY[section]];
  if (keys(entry) !== [SECTION_ENTRY[section], "name"].sort().join(",") || typeof v !== "object" || v === null) return false;
  const val = v as Record<string, unknown>;
  if (section === "clusters") return keys(val) === "certificate-authority-data,server" && val.server === `https://127.0.0.1:${port}`;
  if (section === "users") return keys(val) === "client-certificate-data,client-key-data";
  return keys(val) === "cluster,user" && val.cluster === name && val.user === name;
}

/** UnmergeResult is a kubeconfig without a node's entries: the new text, the sections whose entry went, and those kept because a user changed them. */
export interface UnmergeResult {
  text: string;
  removed: string[];
  changed: string[];
}

/**
 * unmergeKubeconfig removes the clusters, contexts and users entries named `name` that
 * mergeKubeconfig wrote (for the apiserver port `port`), as `kind delete cluster` removes its
 * entries, and empties current-context when it names that context. All or nothing: when one of
 * them is not as u7s wrote it (a user added a namespace, changed the server, put a token in), all
 * are kept (removing the cluster and user under a context the user still has would leave it
 * dangling), and `changed` says which. Like mergeKubeconfig it edits the text, so every other
 * entry, comment and the formatting stay byte-identical; only lists it cannot splice (flow style)
 * are re-serialized.
 */
export function unmergeKubeconfig(existing: string, name: string, port: number, file?: string): UnmergeResult {
  const none = { text: existing, removed: [], changed: [] };
  if (existing.trim() === "") return none;
  const doc = parseKubeconfigText(existing, `cannot remove ${name} from ${file ?? "the kubeconfig"}`);
  const hits: { section: (typeof SECTIONS)[number]; seq: YAMLSeq; map: YAMLMap }[] = [];
  const changed: string[] = [];
  for (const section of SECTIONS) {
    const seq = doc.get(section);
    if (!isSeq(seq)) continue;
    for (const map of seq.items) {
      if (!isMap(map) || map.get("name") !== name) continue;
      hits.push({ section, seq, map });
      if (!writtenByU7s(section, map.toJSON() as Record<string, unknown>, name, port)) changed.push(section.slice(0, -1));
    }
  }
  if (hits.length === 0) return none;
  if (changed.length > 0) return { ...none, changed };
  const removed = hits.map((h) => h.section.slice(0, -1));
  const current = doc.get("current-context", true);
  const isCurrent = isScalar(current) && current.value === name;
  const edits: { at: number; end: number; text: string }[] = [];
  for (const { seq, map } of hits) {
    // A parsed node has its range; a block map's ends after its last line's newline.
    const [start, end] = map.range!;
    const lineStart = existing.lastIndexOf("\n", start) + 1;
    // A block item "- key: ..." whose map starts on the dash's line: cut its whole lines. Anything else
    // (flow style, "-" alone on its line) is removed structurally.
    if (seq.flow || !/^[ ]*-[ ]+$/.test(existing.slice(lineStart, start))) {
      for (const h of hits) h.seq.items.splice(h.seq.items.indexOf(h.map), 1);
      if (isCurrent) doc.set("current-context", "");
      return { text: doc.toString({ lineWidth: 0 }), removed, changed };
    }
    edits.push({ at: lineStart, end, text: "" });
  }
  if (isCurrent) edits.push({ at: current.range![0], end: current.range![1], text: '""' });
  let text = existing;
  for (const e of edits.sort((a, b) => b.at - a.at)) text = text.slice(0, e.at) + e.text + text.slice(e.end);
  return { text, removed, changed };
}

/** KUBECONFIG_MAX_BYTES caps a kubeconfig u7s reads to merge into: one cluster's entries take about 6 KiB, so thousands fit. */
export const KUBECONFIG_MAX_BYTES = 16 << 20;

/**
 * linkTarget follows path's symbolic links to the file they name (which may not exist yet), as
 * kubectl's write does: a dotfiles manager's ~/.kube/config link stays a link and its target is
 * what is written.
 */
export async function linkTarget(path: string): Promise<string> {
  let p = path;
  for (let hops = 0; hops < 40; hops++) {
    let st;
    try {
      st = await lstat(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return p;
      throw err;
    }
    if (!st.isSymbolicLink()) return p;
    p = resolve(dirname(p), await readlink(p));
  }
  throw new UsageError(`${path}: too many levels of symbolic links`);
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
