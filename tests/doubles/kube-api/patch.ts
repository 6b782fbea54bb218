// The PATCH flavours of the Kubernetes API double: JSON merge patch (RFC 7386), JSON patch
// (RFC 6902), and a strategic merge patch that knows the merge keys of the lists clients patch.

/** Json is a parsed JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** PatchError is a patch that cannot apply (422 for the client). */
export class PatchError extends Error {}

const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => structuredClone(v);

/** mergePatch applies an RFC 7386 JSON merge patch: objects merge, null deletes, anything else replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

/**
 * MERGE_KEYS are the list fields Kubernetes merges by key in a strategic merge patch
 * (patchStrategy=merge in the API types). Other lists, Node spec.taints among them, are replaced.
 */
const MERGE_KEYS: Record<string, string | ((item: JsonObject) => string)> = {
  addresses: "type",
  conditions: "type",
  containers: "name",
  initContainers: "name",
  ephemeralContainers: "name",
  volumes: "name",
  volumeMounts: "mountPath",
  env: "name",
  imagePullSecrets: "name",
  ownerReferences: "uid",
  // container ports are keyed by containerPort, service ports by port
  ports: (item) => ("containerPort" in item ? "containerPort" : "port"),
};

function mergeKey(field: string, item: JsonObject): string | undefined {
  const k = MERGE_KEYS[field];
  return typeof k === "function" ? k(item) : k;
}

function mergeList(field: string, target: Json[], patch: Json[]): Json[] {
  const first = patch.find(isObject);
  const key = first ? mergeKey(field, first) : undefined;
  if (!key) return clone(patch.filter((p) => !(isObject(p) && "$patch" in p)));
  const out = [...target];
  for (const item of patch) {
    if (!isObject(item)) continue;
    const at = out.findIndex((t) => isObject(t) && t[key] === item[key]);
    if (item.$patch === "delete") {
      if (at >= 0) out.splice(at, 1);
    } else if (at >= 0) out[at] = strategicMergePatch(out[at] as Json, item);
    else out.push(strategicMergePatch({}, item));
  }
  return out;
}

/**
 * strategicMergePatch applies a strategic merge patch: a merge patch whose lists with a merge key
 * (status.addresses by type, containers by name, ...) merge item by item; `$patch: replace|delete`
 * is honoured, the ordering and retainKeys directives are ignored.
 */
export function strategicMergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  if (patch.$patch === "delete") return null;
  const replace = patch.$patch === "replace";
  const out: JsonObject = isObject(target) && !replace ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith("$")) continue; // $patch, $setElementOrder/x, $retainKeys, $deleteFromPrimitiveList/x
    if (v === null) delete out[k];
    else if (Array.isArray(v)) out[k] = mergeList(k, Array.isArray(out[k]) ? out[k] : [], v);
    else {
      const merged = strategicMergePatch(out[k] ?? null, v);
      if (merged === null) delete out[k];
      else out[k] = merged;
    }
  }
  return out;
}

/** pointer splits an RFC 6901 JSON pointer into its unescaped tokens. */
function pointer(path: string): string[] {
  if (path === "") return [];
  if (!path.startsWith("/")) throw new PatchError(`json patch: invalid path ${JSON.stringify(path)}`);
  return path.slice(1).split("/").map((t) => t.replaceAll("~1", "/").replaceAll("~0", "~"));
}

function parentOf(doc: Json, tokens: string[], path: string): [Json[] | JsonObject, string] {
  let cur: Json = doc;
  for (const t of tokens.slice(0, -1)) {
    const next: Json | undefined = Array.isArray(cur) ? cur[Number(t)] : isObject(cur) ? cur[t] : undefined;
    if (next === undefined) throw new PatchError(`json patch: path ${path} does not exist`);
    cur = next;
  }
  if (!Array.isArray(cur) && !isObject(cur)) throw new PatchError(`json patch: path ${path} has no parent container`);
  return [cur, tokens.at(-1) ?? ""];
}

function getAt(doc: Json, path: string): Json {
  let cur: Json | undefined = doc;
  for (const t of pointer(path)) cur = Array.isArray(cur) ? cur[Number(t)] : isObject(cur) ? cur[t] : undefined;
  if (cur === undefined) throw new PatchError(`json patch: path ${path} does not exist`);
  return cur;
}

function remove(doc: Json, path: string): Json {
  const [parent, last] = parentOf(doc, pointer(path), path);
  if (Array.isArray(parent)) {
    const i = Number(last);
    if (!(i >= 0 && i < parent.length)) throw new PatchError(`json patch: no index ${last} at ${path}`);
    return parent.splice(i, 1)[0] as Json;
  }
  if (!(last in parent)) throw new PatchError(`json patch: path ${path} does not exist`);
  const v = parent[last] as Json;
  delete parent[last];
  return v;
}

function add(doc: Json, path: string, value: Json): Json {
  const tokens = pointer(path);
  if (tokens.length === 0) return value;
  const [parent, last] = parentOf(doc, tokens, path);
  if (Array.isArray(parent)) {
    const i = last === "-" ? parent.length : Number(last);
    if (!(i >= 0 && i <= parent.length)) throw new PatchError(`json patch: index ${last} out of range at ${path}`);
    parent.splice(i, 0, value);
  } else parent[last] = value;
  return doc;
}

/** jsonPatch applies an RFC 6902 JSON patch (add, remove, replace, move, copy, test). */
export function jsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw new PatchError("json patch: the body is not a list of operations");
  let doc = clone(target);
  for (const op of ops) {
    if (!isObject(op) || typeof op.op !== "string" || typeof op.path !== "string") throw new PatchError("json patch: invalid operation");
    const path = op.path;
    switch (op.op) {
      case "add":
        doc = add(doc, path, clone(op.value ?? null));
        break;
      case "remove":
        remove(doc, path);
        break;
      case "replace":
        getAt(doc, path);
        if (pointer(path).length === 0) doc = clone(op.value ?? null);
        else {
          remove(doc, path);
          doc = add(doc, path, clone(op.value ?? null));
        }
        break;
      case "move":
      case "copy": {
        if (typeof op.from !== "string") throw new PatchError(`json patch: ${op.op} without from`);
        const v = op.op === "move" ? remove(doc, op.from) : clone(getAt(doc, op.from));
        doc = add(doc, path, v);
        break;
      }
      case "test":
        if (JSON.stringify(getAt(doc, path)) !== JSON.stringify(op.value)) throw new PatchError(`json patch: test failed at ${path}`);
        break;
      default:
        throw new PatchError(`json patch: unknown op ${JSON.stringify(op.op)}`);
    }
  }
  return doc;
}
