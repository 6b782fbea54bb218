// The HTTPS front of the Kubernetes API double: authentication (client certificates signed by the
// cluster CA, bootstrap tokens, anonymous access to public info), routing of /api and /apis paths
// to the store, the PATCH flavours, watches, and a log line per request on stderr.
import { writeSync } from "node:fs";
import { type IncomingMessage, type ServerResponse } from "node:http";
import { type Server, createServer } from "node:https";
import type { TLSSocket } from "node:tls";
import { parse as parseYaml } from "yaml";
import { applyDefaults } from "./defaults.ts";
import * as discovery from "./discovery.ts";
import { ApiError, statusObject } from "./errors.ts";
import { type Json, PatchError, jsonPatch, mergePatch, strategicMergePatch } from "./patch.ts";
import { decodeObject, isProtobuf } from "./protobuf.ts";
import { type ResourceType, apiVersionOf, findKind, findResource } from "./resources.ts";
import { EVERYTHING, parseSelector } from "./selectors.ts";
import { type KubeObject, Store, type UpdateMode } from "./storage.ts";
import { table, wantsTable } from "./table.ts";

/** ServerOptions configure the double's HTTPS server. */
export interface ServerOptions {
  cert: string;
  key: string;
  clientCa: string;
  /** podCidr: when set, nodes created without spec.podCIDR get the next /24 of it (the controller-manager's node IPAM). */
  podCidr?: string;
}

/** Route is what an /api or /apis path addresses. */
interface Route {
  resource: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
  watch: boolean;
}

/** INITIAL_NAMESPACES exist from the start, as on a fresh cluster. */
const INITIAL_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];
const CORE_NAMESPACES = findResource("", "v1", "namespaces") as ResourceType;
const CORE_SECRETS = findResource("", "v1", "secrets") as ResourceType;
const CORE_NODES = findResource("", "v1", "nodes") as ResourceType;
/** PUBLIC_PATHS are what anonymous clients may GET (system:public-info-viewer, and kubeadm join's discovery). */
const PUBLIC_PATHS = new Set(["/version", "/healthz", "/readyz", "/livez", "/api/v1/namespaces/kube-public/configmaps/cluster-info"]);

/** parseRoute maps /api/v1/... and /apis/G/V/... to a resource, undefined when nothing is served there. */
function parseRoute(path: string): Route | undefined {
  const seg = path.split("/").filter((s) => s !== "").map(decodeURIComponent);
  let group: string;
  let version: string | undefined;
  let rest: string[];
  if (seg[0] === "api") [group, version, rest] = ["", seg[1], seg.slice(2)];
  else if (seg[0] === "apis") [group, version, rest] = [seg[1] ?? "", seg[2], seg.slice(3)];
  else return undefined;
  const watch = rest[0] === "watch"; // the deprecated /api/v1/watch/... form
  if (watch) rest = rest.slice(1);
  let namespace: string | undefined;
  // /namespaces/NS/RESOURCE... (but /namespaces/NAME/status and /finalize are the namespace's own)
  if (rest[0] === "namespaces" && rest.length >= 3 && !(rest.length === 3 && ["status", "finalize"].includes(rest[2] as string))) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const resource = version === undefined ? undefined : findResource(group, version, rest[0] ?? "");
  if (!resource || rest.length > 3 || (namespace !== undefined && !resource.namespaced)) return undefined;
  return { resource, namespace, name: rest[1], subresource: rest[2], watch };
}

/** podCidrAllocator hands out the /24s of a /16 (or larger) pod network, skipping those in use. */
function podCidrFor(podCidr: string, used: Set<string>): string | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(podCidr);
  if (!m) return undefined;
  const base = m.slice(1, 5).reduce((acc, o) => acc * 256 + Number(o), 0);
  for (let i = 0; i < 2 ** (24 - Number(m[5])); i++) {
    const n = base + i * 256;
    const cidr = `${[n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, 0].join(".")}/24`;
    if (!used.has(cidr)) return cidr;
  }
  return undefined;
}

/** KubeApiDouble serves the API from a Store. */
export class KubeApiDouble {
  readonly store: Store;
  readonly server: Server;

  constructor(
    private readonly opts: ServerOptions,
    stateFile: string | undefined,
  ) {
    this.store = new Store(stateFile);
    for (const ns of INITIAL_NAMESPACES) {
      if (!this.store.get(CORE_NAMESPACES, undefined, ns)) this.store.create(CORE_NAMESPACES, undefined, this.admit(CORE_NAMESPACES, { metadata: { name: ns } }));
    }
    this.server = createServer({ cert: opts.cert, key: opts.key, ca: opts.clientCa, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => this.fail(req, res, err));
    });
  }

  /** listen binds the server and resolves once it accepts connections. */
  listen(port: number, host: string): Promise<void> {
    return new Promise((resolve) => this.server.listen(port, host, resolve));
  }

  private log(req: IncomingMessage, code: number, user: string): void {
    // written at once (console.error may buffer when stderr is a file): tests read the log as they go
    writeSync(2, `${req.method} ${req.url} ${req.headers["content-type"] ?? "-"} -> ${code} (${user})\n`);
  }

  private reply(req: IncomingMessage, res: ServerResponse, code: number, body: unknown, user: string, contentType = "application/json"): void {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    res.writeHead(code, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(text) });
    res.end(text);
    this.log(req, code, user);
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown, user = "?"): void {
    const e =
      err instanceof ApiError ? err
      : err instanceof PatchError ? new ApiError(422, "Invalid", err.message)
      : new ApiError(500, "InternalError", err instanceof Error ? err.message : String(err));
    if (e.code === 500) console.error(err);
    if (res.headersSent) res.end();
    else this.reply(req, res, e.code, statusObject(e.code, e.reason, e.message, e.details), user);
  }

  /** authenticate names the client: a verified client certificate, a valid bootstrap token, or anonymous. */
  private authenticate(req: IncomingMessage): string {
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer ([a-z0-9]{6})\.([a-z0-9]{16})$/.exec(auth);
      const secret = m ? this.store.get(CORE_SECRETS, "kube-system", `bootstrap-token-${m[1]}`) : undefined;
      const data = (secret?.data ?? {}) as Record<string, string>;
      const decoded = (k: string) => (data[k] === undefined ? undefined : Buffer.from(data[k], "base64").toString());
      const expiration = decoded("expiration");
      if (!m || decoded("token-secret") !== m[2] || (expiration !== undefined && Date.parse(expiration) < Date.now())) {
        throw new ApiError(401, "Unauthorized", "Unauthorized");
      }
      return `system:bootstrap:${m[1]}`;
    }
    return (req.socket as TLSSocket).authorized ? "x509" : "system:anonymous";
  }

  private async body(req: IncomingMessage): Promise<Uint8Array> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  /** decodeBody reads a POST/PUT body: JSON, YAML, or Kubernetes protobuf. */
  private decodeBody(raw: Uint8Array, contentType: string): KubeObject {
    const obj = isProtobuf(raw) ? decodeObject(raw) : contentType.includes("yaml") ? parseYaml(new TextDecoder().decode(raw)) : JSON.parse(new TextDecoder().decode(raw));
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new ApiError(400, "BadRequest", "the body is not an object");
    return { ...obj, metadata: { ...(obj.metadata ?? {}) } } as KubeObject;
  }

  /** admit fills in what the real API's admission and controllers would on create. */
  private admit(r: ResourceType, obj: KubeObject | { metadata: { name: string } }): KubeObject {
    const o = obj as KubeObject;
    if (r === CORE_NAMESPACES) {
      o.metadata.labels = { ...o.metadata.labels, "kubernetes.io/metadata.name": o.metadata.name };
      o.spec = { finalizers: ["kubernetes"], ...(o.spec as object | undefined) };
      o.status = { phase: "Active" };
    }
    const spec = (o.spec ?? {}) as Record<string, unknown>;
    if (r === CORE_NODES && this.opts.podCidr && spec.podCIDR === undefined) {
      const used = new Set(this.store.list(CORE_NODES, undefined, EVERYTHING).map((n) => String((n.spec as Record<string, unknown> | undefined)?.podCIDR)));
      const cidr = podCidrFor(this.opts.podCidr, used);
      if (cidr) o.spec = { ...spec, podCIDR: cidr, podCIDRs: [cidr] };
    }
    return applyDefaults(r, o);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "https://double");
    const method = req.method ?? "GET";
    let user = "?";
    try {
      user = this.authenticate(req);
      if (user === "system:anonymous" && !(method === "GET" && PUBLIC_PATHS.has(url.pathname))) {
        throw new ApiError(403, "Forbidden", `forbidden: User "system:anonymous" cannot ${method.toLowerCase()} path "${url.pathname}"`);
      }
      const accept = req.headers.accept ?? "";
      const send = (code: number, body: unknown, type?: string) => this.reply(req, res, code, body, user, type);
      const p = url.pathname.replace(/\/+$/, "") || "/";
      if (["/healthz", "/readyz", "/livez"].includes(p)) return send(200, "ok", "text/plain");
      if (p === "/version") return send(200, discovery.versionInfo());
      if (p === "/api" || p === "/apis") {
        if (discovery.wantsAggregated(accept)) return send(200, discovery.aggregatedDiscovery(p === "/api"), discovery.AGGREGATED_CONTENT_TYPE);
        return send(200, p === "/api" ? discovery.legacyApiVersions() : discovery.apiGroupList());
      }
      if (p === "/openapi/v3") return send(200, discovery.openApiIndex());
      if (p.startsWith("/openapi/v3/")) {
        const doc = discovery.openApiDocument(p.slice("/openapi/v3/".length));
        if (doc) return send(200, doc);
      }
      const gv = /^\/api\/(v1)$|^\/apis\/([^/]+)\/([^/]+)$/.exec(p);
      const list = gv && discovery.apiResourceList(gv[2] ?? "", (gv[1] ?? gv[3]) as string);
      if (list) return send(200, list);
      const route = parseRoute(p);
      if (!route) throw new ApiError(404, "NotFound", "the server could not find the requested resource");
      if (route.subresource !== undefined && !(route.subresource === "status" && route.resource.status)) {
        throw new ApiError(404, "NotFound", `the server could not find the requested resource (${route.resource.plural}/${route.subresource})`);
      }
      if (route.resource.namespaced && route.name !== undefined && route.namespace === undefined) {
        throw new ApiError(404, "NotFound", "the server could not find the requested resource");
      }
      if (route.watch || ["true", "1"].includes(url.searchParams.get("watch") ?? "")) return this.watch(req, res, route, url, user, wantsTable(accept));
      const [code, body] = await this.serve(req, route, url, method);
      if (wantsTable(accept) && method === "GET") {
        const items = route.name === undefined ? ((body as { items: KubeObject[] }).items) : [body as KubeObject];
        return send(code, table(route.resource, items, this.store.resourceVersion, url.searchParams.get("includeObject")));
      }
      return send(code, body);
    } catch (err) {
      this.fail(req, res, err, user);
    }
  }

  /** serve runs one non-watch request against the store and returns the reply's code and body. */
  private async serve(req: IncomingMessage, route: Route, url: URL, method: string): Promise<[number, unknown]> {
    const { resource: r, namespace, name } = route;
    const store = this.store;
    const contentType = req.headers["content-type"] ?? "";
    const selector = () => parseSelector(url.searchParams.get("labelSelector"), url.searchParams.get("fieldSelector"));
    const listOf = (items: KubeObject[]) => ({ kind: `${r.kind}List`, apiVersion: apiVersionOf(r), metadata: { resourceVersion: store.resourceVersion }, items });
    const needNamespace = () => {
      if (namespace !== undefined && !store.get(CORE_NAMESPACES, undefined, namespace)) {
        throw new ApiError(404, "NotFound", `namespaces "${namespace}" not found`, { name: namespace, kind: "namespaces" });
      }
    };
    const existing = () => {
      const o = name === undefined ? undefined : store.get(r, namespace, name);
      if (!o) throw new ApiError(404, "NotFound", `${r.plural}${r.group ? `.${r.group}` : ""} "${name}" not found`, { name, group: r.group, kind: r.plural });
      return o;
    };
    const checkBody = (o: KubeObject) => {
      if (r.namespaced && o.metadata.namespace !== undefined && o.metadata.namespace !== namespace) {
        throw new ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request");
      }
    };
    const mode: UpdateMode = route.subresource === "status" ? "status" : "main";
    if (name === undefined) {
      if (method === "GET") return [200, listOf(store.list(r, namespace, selector()))];
      if (method === "POST") {
        const o = this.decodeBody(await this.body(req), contentType);
        checkBody(o);
        needNamespace();
        return [201, store.create(r, namespace, this.admit(r, o))];
      }
      if (method === "DELETE") return [200, listOf(store.list(r, namespace, selector()).map((o) => store.delete(r, namespace, o.metadata.name)))];
      throw new ApiError(405, "MethodNotAllowed", `${method} is not supported on a collection`);
    }
    switch (method) {
      case "GET":
        return [200, existing()];
      case "PUT": {
        const o = this.decodeBody(await this.body(req), contentType);
        checkBody(o);
        existing();
        return [200, store.update(r, namespace, name, applyDefaults(r, o), mode)];
      }
      case "DELETE":
        return [200, store.delete(r, namespace, name)];
      case "PATCH": {
        const text = new TextDecoder().decode(await this.body(req));
        const type = contentType.split(";")[0]?.trim();
        if (type === "application/apply-patch+yaml") {
          const applied = parseYaml(text) as KubeObject;
          if (findKind(String(applied.apiVersion), String(applied.kind)) !== r) {
            throw new ApiError(400, "BadRequest", `apply: ${applied.apiVersion}/${applied.kind} does not belong at ${url.pathname}`);
          }
          checkBody(applied);
          const current = store.get(r, namespace, name);
          if (!current) {
            needNamespace();
            return [201, store.create(r, namespace, this.admit(r, { ...applied, metadata: { ...applied.metadata, name } }))];
          }
          return [200, store.update(r, namespace, name, applyDefaults(r, strategicMergePatch(current as Json, applied as Json) as KubeObject), mode)];
        }
        const current = existing() as Json;
        const patch = JSON.parse(text) as Json;
        const patched =
          type === "application/merge-patch+json" ? mergePatch(current, patch)
          : type === "application/strategic-merge-patch+json" ? strategicMergePatch(current, patch)
          : type === "application/json-patch+json" ? jsonPatch(current, patch)
          : undefined;
        if (patched === undefined) throw new ApiError(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
        return [200, store.update(r, namespace, name, applyDefaults(r, patched as KubeObject), mode)];
      }
    }
    throw new ApiError(405, "MethodNotAllowed", `${method} is not supported`);
  }

  /**
   * watch streams events of the selected objects: the current ones first as ADDED unless the client
   * gave a resourceVersion to start from, then every change, until the client goes or timeoutSeconds pass.
   */
  private watch(req: IncomingMessage, res: ServerResponse, route: Route, url: URL, user: string, asTable: boolean): void {
    const selector = parseSelector(url.searchParams.get("labelSelector"), url.searchParams.get("fieldSelector"));
    const single = route.name === undefined ? selector : { ...selector, fields: [...selector.fields, { key: "metadata.name", op: "=" as const, values: [route.name] }] };
    res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-cache, private" });
    // clients wait for the headers before they look at what they listed
    res.flushHeaders();
    this.log(req, 200, `${user}, watch`);
    // `kubectl get -w` asks for each event's object as a one-row Table
    const write = (e: { type: string; object: KubeObject }) => {
      const object = asTable && e.type !== "BOOKMARK" ? table(route.resource, [e.object], this.store.resourceVersion, url.searchParams.get("includeObject")) : e.object;
      res.write(`${JSON.stringify({ type: e.type, object })}\n`);
    };
    const rv = url.searchParams.get("resourceVersion");
    const initial = url.searchParams.get("sendInitialEvents") === "true";
    if (rv === null || rv === "" || rv === "0" || initial) {
      for (const o of this.store.list(route.resource, route.namespace, single)) write({ type: "ADDED", object: o });
    }
    if (initial) {
      // a watch-list client waits for this bookmark before it trusts the initial events as complete
      const marker = { resourceVersion: this.store.resourceVersion, annotations: { "k8s.io/initial-events-end": "true" } };
      write({ type: "BOOKMARK", object: { kind: route.resource.kind, apiVersion: apiVersionOf(route.resource), metadata: marker } as unknown as KubeObject });
    }
    const stop = this.store.watch(route.resource, route.namespace, single, write);
    const timeout = Number(url.searchParams.get("timeoutSeconds") ?? 1800);
    const timer = setTimeout(() => res.end(), timeout * 1000);
    res.on("close", () => {
      stop();
      clearTimeout(timer);
    });
  }
}
