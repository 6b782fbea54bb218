// Discovery and OpenAPI documents of the Kubernetes API double, derived from the resource catalogue.
// kubectl 1.34 and helm 4 ask for aggregated discovery first (apidiscovery.k8s.io/v2) and fall back
// to the legacy documents; helm 4 also reads /openapi/v3 before a server-side apply.
import { type GroupVersion, type ResourceType, STATUS_VERBS, VERBS, apiVersionOf, groupVersions } from "./resources.ts";

/** AGGREGATED_CONTENT_TYPE must be the reply's content type exactly, or clients ignore the document. */
export const AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/** SERVER_VERSION is what /version reports (the kubeadm double's version too). */
export const SERVER_VERSION = "v1.35.0";

/** wantsAggregated tells whether an Accept header asks for aggregated discovery. */
export function wantsAggregated(accept: string): boolean {
  return accept.includes("as=APIGroupDiscoveryList");
}

/** versionInfo is the /version document. */
export function versionInfo(): Record<string, string> {
  return {
    major: "1",
    minor: "35",
    gitVersion: SERVER_VERSION,
    gitCommit: "0000000000000000000000000000000000000000",
    gitTreeState: "clean",
    buildDate: "2025-12-17T00:00:00Z",
    goVersion: "go1.25.5",
    compiler: "gc",
    platform: "linux/amd64",
  };
}

const core = (): GroupVersion[] => groupVersions().filter((g) => g.group === "");
const named = (): GroupVersion[] => groupVersions().filter((g) => g.group !== "");

/** legacyApiVersions is the /api document (APIVersions). */
export function legacyApiVersions(): unknown {
  return {
    kind: "APIVersions",
    versions: core().map((g) => g.version),
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: "127.0.0.1:6443" }],
  };
}

/** apiGroupList is the /apis document (APIGroupList). */
export function apiGroupList(): unknown {
  const groups = new Map<string, string[]>();
  for (const g of named()) groups.set(g.group, [...(groups.get(g.group) ?? []), g.version]);
  return {
    kind: "APIGroupList",
    apiVersion: "v1",
    groups: [...groups].map(([name, versions]) => ({
      name,
      versions: versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v })),
      preferredVersion: { groupVersion: `${name}/${versions[0]}`, version: versions[0] },
    })),
  };
}

/** apiResourceList is the /api/v1 or /apis/G/V document (APIResourceList), undefined when not served. */
export function apiResourceList(group: string, version: string): unknown {
  const gv = groupVersions().find((g) => g.group === group && g.version === version);
  if (!gv) return undefined;
  const resources: unknown[] = [];
  for (const r of gv.resources) {
    resources.push({
      name: r.plural,
      singularName: r.singular,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: VERBS,
      ...(r.shortNames.length > 0 ? { shortNames: r.shortNames } : {}),
      ...(r.categories.length > 0 ? { categories: r.categories } : {}),
      storageVersionHash: "double",
    });
    if (r.status) resources.push({ name: `${r.plural}/status`, singularName: "", namespaced: r.namespaced, kind: r.kind, verbs: STATUS_VERBS });
  }
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion: apiVersionOf(gv), resources };
}

function resourceDiscovery(r: ResourceType): unknown {
  const responseKind = { group: r.group, version: r.version, kind: r.kind };
  return {
    resource: r.plural,
    responseKind,
    scope: r.namespaced ? "Namespaced" : "Cluster",
    singularResource: r.singular,
    verbs: VERBS,
    ...(r.shortNames.length > 0 ? { shortNames: r.shortNames } : {}),
    ...(r.categories.length > 0 ? { categories: r.categories } : {}),
    ...(r.status ? { subresources: [{ subresource: "status", responseKind, verbs: STATUS_VERBS }] } : {}),
  };
}

/** aggregatedDiscovery is the APIGroupDiscoveryList of /api (legacy: true) or /apis. */
export function aggregatedDiscovery(legacy: boolean): unknown {
  const items = new Map<string, GroupVersion[]>();
  for (const g of legacy ? core() : named()) items.set(g.group, [...(items.get(g.group) ?? []), g]);
  return {
    kind: "APIGroupDiscoveryList",
    apiVersion: "apidiscovery.k8s.io/v2",
    metadata: {},
    items: [...items].map(([name, versions]) => ({
      metadata: { name, creationTimestamp: null },
      versions: versions.map((v) => ({ version: v.version, resources: v.resources.map(resourceDiscovery), freshness: "Current" })),
    })),
  };
}

/** openApiPath is a GroupVersion's key in the /openapi/v3 index ("api/v1", "apis/apps/v1"). */
function openApiPath(g: GroupVersion): string {
  return g.group === "" ? `api/${g.version}` : `apis/${g.group}/${g.version}`;
}

/** openApiIndex is the /openapi/v3 document: one entry per GroupVersion. */
export function openApiIndex(): unknown {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const g of groupVersions()) paths[openApiPath(g)] = { serverRelativeURL: `/openapi/v3/${openApiPath(g)}?hash=U7SDOUBLE` };
  return { paths };
}

/**
 * openApiDocument is the OpenAPI v3 document of one GroupVersion ("api/v1"), undefined when not
 * served. It is a skeleton: a PATCH operation per resource carrying x-kubernetes-group-version-kind
 * and the query parameters the server supports; no schemas.
 */
export function openApiDocument(path: string): unknown {
  const g = groupVersions().find((gv) => openApiPath(gv) === path);
  if (!g) return undefined;
  const paths: Record<string, unknown> = {};
  for (const r of g.resources) {
    const base = `/${path}${r.namespaced ? "/namespaces/{namespace}" : ""}/${r.plural}/{name}`;
    const op = (action: string) => ({
      operationId: `${action}${r.kind}`,
      "x-kubernetes-action": action,
      "x-kubernetes-group-version-kind": { group: r.group, version: r.version, kind: r.kind },
      responses: { "200": { description: "OK" } },
    });
    // kubectl and helm look for these query parameters on the PATCH operation of a kind before they
    // leave field validation (and dry runs) to the server instead of validating against /openapi/v2
    const parameters = ["dryRun", "fieldManager", "fieldValidation", "force"].map((name) => ({ name, in: "query", schema: { type: "string" } }));
    paths[base] = { get: op("get"), put: op("put"), patch: { ...op("patch"), parameters }, delete: op("delete") };
  }
  return { openapi: "3.0.0", info: { title: "Kubernetes", version: SERVER_VERSION }, paths, components: { schemas: {} } };
}
