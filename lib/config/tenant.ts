import { DEFAULT_PORTS } from "./settings.ts";

/**
 * Tenants let one user (or several users) run many nodes on one host and one engine. Tenant 0 is
 * upstream Usernetes exactly; tenant N (1..MAX_TENANT) moves every port, the node name and the node
 * subnet by a fixed formula, so no two tenants ever share a port, an engine object or a subnet:
 *
 *   port       = upstream default + 10000 + (N - 1)   (tenant 1: 12379, 20250, 18472, 16443,
 *                                                      upstream's multi-tenancy example)
 *   NODE_NAME  = u7s-HOSTNAME-tN
 *   NODE_SUBNET = 10.(100 + N).H.0/24, H = upstream's host-name hash byte
 *
 * The four port ranges (etcd 12379.., apiserver 16443.., flannel 18472.., kubelet 20250..) are at
 * least 1778 apart, so up to MAX_TENANT they never meet, and all stay below the kernel's
 * ephemeral port range (32768..).
 */

/** TENANT_ENV is the environment variable that picks the tenant (the flag is --tenant). */
export const TENANT_ENV = "U7S_TENANT";
/** MAX_TENANT is the highest tenant number: tenants 0..99 per host. */
export const MAX_TENANT = 99;
/** TENANT_PORT_OFFSET is how far tenant 1 moves each upstream port. */
export const TENANT_PORT_OFFSET = 10000;

/** PortKey names one of the node's published ports. */
export type PortKey = keyof typeof DEFAULT_PORTS;

/** tenantPort is a port of a tenant: upstream's default for tenant 0, default + 10000 + (tenant - 1) otherwise. */
export function tenantPort(key: PortKey, tenant: number): number {
  const base = DEFAULT_PORTS[key];
  return tenant === 0 ? base : base + TENANT_PORT_OFFSET + (tenant - 1);
}

/** tenantPorts are all four ports of a tenant. */
export function tenantPorts(tenant: number): Record<PortKey, number> {
  return {
    portEtcd: tenantPort("portEtcd", tenant),
    portKubelet: tenantPort("portKubelet", tenant),
    portFlannel: tenantPort("portFlannel", tenant),
    portKubeApiserver: tenantPort("portKubeApiserver", tenant),
  };
}

/** tenantNodeName is upstream's u7s-HOSTNAME (lowercased) for tenant 0, with -tN appended for tenant N. */
export function tenantNodeName(hostname: string, tenant: number): string {
  const base = `u7s-${hostname.toLowerCase()}`;
  return tenant === 0 ? base : `${base}-t${tenant}`;
}

/**
 * tenantSubnet is upstream's 10.100.H.0/24 for tenant 0 (H: the first byte of SHA-256 of the host
 * name and a newline, as `echo "$HOSTNAME" | sha256sum`), 10.(100+N).H.0/24 for tenant N: clear of
 * the service (10.96/16) and pod (10.244/16) ranges for every tenant.
 */
export function tenantSubnet(hostname: string, tenant: number): string {
  const h = new Bun.CryptoHasher("sha256").update(`${hostname}\n`).digest()[0]; // not node:crypto: it costs every command ~4 ms of start-up
  return `10.${100 + tenant}.${h}.0/24`;
}

/** parseTenant reads a tenant number; undefined when it is not an integer from 0 to MAX_TENANT. */
export function parseTenant(value: string): number | undefined {
  if (!/^[0-9]{1,3}$/.test(value)) return undefined;
  const n = Number(value);
  return n <= MAX_TENANT ? n : undefined;
}
