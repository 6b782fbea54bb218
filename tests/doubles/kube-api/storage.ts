// The object store of the Kubernetes API double: every kind in one map, a global resourceVersion,
// watchers, and a JSON state file rewritten atomically after each change so the API survives a
// restart of its node container.
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { type ResourceType, RESOURCES, apiVersionOf } from "./resources.ts";
import { ApiError, notFound } from "./errors.ts";
import { type Selector, selects } from "./selectors.ts";

/** KubeObject is a stored object (JSON, with metadata). */
export type KubeObject = Record<string, unknown> & { metadata: Metadata };

/** Metadata is the ObjectMeta fields the double reads and writes. */
export type Metadata = Record<string, unknown> & {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
};

/** WatchEvent is one line of a watch stream. */
export interface WatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED";
  object: KubeObject;
}

interface Watcher {
  resource: ResourceType;
  namespace: string | undefined;
  selector: Selector;
  send: (e: WatchEvent) => void;
}

/** UpdateMode says what a write replaces: the object without its status, only the status, or all of it. */
export type UpdateMode = "main" | "status" | "all";

const keyOf = (r: ResourceType, namespace: string | undefined, name: string) => `${r.group}/${r.plural}/${namespace ?? ""}/${name}`;
const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");
const withoutMetaStatus = (o: KubeObject) => JSON.stringify({ ...o, metadata: undefined, status: undefined });

/** Store holds every object of the double. */
export class Store {
  private objects = new Map<string, KubeObject>();
  private watchers = new Set<Watcher>();
  private listeners = new Set<() => void>();
  private rv = 0;

  constructor(private readonly stateFile: string | undefined) {
    if (stateFile && existsSync(stateFile)) {
      const state = JSON.parse(readFileSync(stateFile, "utf8")) as { resourceVersion: number; objects: Record<string, KubeObject> };
      this.rv = state.resourceVersion;
      this.objects = new Map(Object.entries(state.objects));
    }
  }

  /** resourceVersion is the store's current version (lists report it). */
  get resourceVersion(): string {
    return String(this.rv);
  }

  private save(): void {
    if (!this.stateFile) return;
    const tmp = `${this.stateFile}.tmp`;
    writeFileSync(tmp, JSON.stringify({ resourceVersion: this.rv, objects: Object.fromEntries(this.objects) }), { mode: 0o600 });
    renameSync(tmp, this.stateFile);
  }

  private notify(r: ResourceType, type: WatchEvent["type"], obj: KubeObject, old?: KubeObject): void {
    for (const l of this.listeners) l();
    for (const w of this.watchers) {
      if (w.resource !== r || (w.namespace !== undefined && w.namespace !== obj.metadata.namespace)) continue;
      const now = selects(w.selector, obj);
      const before = old !== undefined && selects(w.selector, old);
      // an object that leaves a watch's selection is DELETED for it, one that enters it ADDED
      if (type === "MODIFIED" && now !== before) w.send({ type: now ? "ADDED" : "DELETED", object: obj });
      else if (now) w.send({ type, object: obj });
    }
  }

  get(r: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const o = this.objects.get(keyOf(r, namespace, name));
    return o && structuredClone(o);
  }

  /** list returns the objects of a resource, in one namespace or all, that the selector selects, sorted by namespace and name. */
  list(r: ResourceType, namespace: string | undefined, selector: Selector): KubeObject[] {
    const prefix = `${r.group}/${r.plural}/${namespace === undefined ? "" : `${namespace}/`}`;
    return [...this.objects]
      .filter(([k, o]) => k.startsWith(prefix) && selects(selector, o))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([, o]) => structuredClone(o));
  }

  /** create stores a new object: 409 AlreadyExists when the name is taken. */
  create(r: ResourceType, namespace: string | undefined, body: KubeObject): KubeObject {
    const meta = body.metadata;
    if (!meta.name && typeof meta.generateName === "string") meta.name = meta.generateName + Math.random().toString(36).slice(2, 7);
    if (!meta.name) throw new ApiError(422, "Invalid", `${r.kind} "": metadata.name: Required value: name or generateName is required`);
    const key = keyOf(r, namespace, meta.name);
    if (this.objects.has(key)) {
      throw new ApiError(409, "AlreadyExists", `${r.plural}${r.group ? `.${r.group}` : ""} "${meta.name}" already exists`, { name: meta.name, group: r.group, kind: r.plural });
    }
    const obj: KubeObject = {
      ...body,
      apiVersion: apiVersionOf(r),
      kind: r.kind,
      metadata: {
        ...meta,
        ...(namespace !== undefined ? { namespace } : {}),
        uid: crypto.randomUUID(),
        resourceVersion: String(++this.rv),
        generation: 1,
        creationTimestamp: now(),
      },
    };
    if (namespace === undefined) delete obj.metadata.namespace;
    this.objects.set(key, obj);
    this.save();
    this.notify(r, "ADDED", obj);
    return structuredClone(obj);
  }

  /**
   * update replaces an existing object. "main" keeps the stored status of a resource with a status
   * subresource, "status" keeps everything but the status; a resourceVersion in the body must match.
   */
  update(r: ResourceType, namespace: string | undefined, name: string, body: KubeObject, mode: UpdateMode): KubeObject {
    const key = keyOf(r, namespace, name);
    const old = this.objects.get(key);
    if (!old) throw notFound(r, name);
    if (body.metadata?.name !== undefined && body.metadata.name !== name) {
      throw new ApiError(400, "BadRequest", `the name of the object (${body.metadata.name}) does not match the name on the URL (${name})`);
    }
    const rv = body.metadata?.resourceVersion;
    if (rv !== undefined && rv !== "" && rv !== old.metadata.resourceVersion) {
      throw new ApiError(409, "Conflict", `Operation cannot be fulfilled on ${r.plural} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, kind: r.plural });
    }
    let obj: KubeObject;
    if (mode === "status") obj = { ...structuredClone(old), status: body.status };
    else {
      obj = { ...body, apiVersion: apiVersionOf(r), kind: r.kind, metadata: { ...body.metadata, name } };
      if (mode === "main" && r.status) obj.status = old.status;
      for (const k of ["uid", "creationTimestamp", "generation", "namespace"] as const) (obj.metadata as Record<string, unknown>)[k] = old.metadata[k];
      if (withoutMetaStatus(obj) !== withoutMetaStatus(old)) obj.metadata.generation = Number(old.metadata.generation ?? 0) + 1;
    }
    if (obj.status === undefined) delete obj.status;
    if (namespace === undefined) delete obj.metadata.namespace;
    obj.metadata.resourceVersion = String(++this.rv);
    this.objects.set(key, obj);
    this.save();
    this.notify(r, "MODIFIED", obj, old);
    return structuredClone(obj);
  }

  /** delete removes an object and returns it; deleting a namespace deletes every object in it. */
  delete(r: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const key = keyOf(r, namespace, name);
    const old = this.objects.get(key);
    if (!old) throw notFound(r, name);
    this.objects.delete(key);
    old.metadata.resourceVersion = String(++this.rv);
    if (r.group === "" && r.plural === "namespaces") {
      for (const inner of RESOURCES.filter((x) => x.namespaced)) {
        for (const o of this.list(inner, name, { labels: [], fields: [] })) this.delete(inner, name, o.metadata.name);
      }
    }
    this.save();
    this.notify(r, "DELETED", old);
    return structuredClone(old);
  }

  /** subscribe calls listener after every change of any object (the controllers' trigger) until the returned function is called. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** watch calls send for every later change of the selected objects until the returned function is called. */
  watch(resource: ResourceType, namespace: string | undefined, selector: Selector, send: (e: WatchEvent) => void): () => void {
    const w: Watcher = { resource, namespace, selector, send };
    this.watchers.add(w);
    return () => this.watchers.delete(w);
  }
}
