// The kernel's key quota (keyrings(7)): every non-root user may own kernel.keys.maxkeys keys of
// kernel.keys.maxbytes bytes in all (200 and 20000 by default). A rootless node's processes run as the
// user (container root maps to the user's uid), so every node draws on that one quota: the engine's
// runtime gives each container a session keyring of its own (runc #726: "Unable to create more than 200
// containers by default"), and systemd in the node one per service. Measured with the test node image:
// 34 nodes of one user held 194 keys and 5500 bytes, and the 35th failed at `docker run` with "unable to
// join session keyring: unable to create session key: disk quota exceeded" (bench/tenants.ts). With the quota
// raised, 50 nodes held 6.8-7.1 keys and 186-187 bytes each on Docker, 7.9 keys and 191-192 bytes on Podman.
import { sysctlFix, type Finding } from "./preflight.ts";
import type { HostProbe } from "./probe.ts";

/**
 * KEYS_PER_NODE is what one booted test node holds of its user's key quota at the most, on either engine
 * (bench/tenants.ts, 50 nodes: 7.9 keys and 192 bytes on Podman), rounded up; an assumption, and a floor:
 * a node running pods holds more, one keyring per container.
 */
export const KEYS_PER_NODE = { keys: 8, bytes: 200 } as const;

/**
 * KEYS_ADVISED are the values init-host sets: LXD's production setup advises maxkeys 2000 ("higher than
 * the number of instances") and maxbytes 2000000 for hosts running many containers
 * (https://documentation.ubuntu.com/lxd/en/latest/reference/server_settings/).
 */
export const KEYS_ADVISED = { maxkeys: 2000, maxbytes: 2000000 } as const;

/** KeyUsage is one user's line of /proc/key-users: what its quota holds and allows. */
export interface KeyUsage {
  keys: number;
  maxkeys: number;
  bytes: number;
  maxbytes: number;
}

/**
 * parseKeyUsers finds uid's quota in /proc/key-users ("UID: USAGE NKEYS/NIKEYS QNKEYS/MAXKEYS
 * QNBYTES/MAXBYTES", keyrings(7)); undefined when the user owns no key (no line) or the text is not that.
 */
export function parseKeyUsers(text: string, uid: number): KeyUsage | undefined {
  for (const line of text.split("\n")) {
    const m = /^\s*(\d+):\s+\d+\s+\d+\/\d+\s+(\d+)\/(\d+)\s+(\d+)\/(\d+)\s*$/.exec(line);
    if (m && Number(m[1]) === uid) return { keys: Number(m[2]), maxkeys: Number(m[3]), bytes: Number(m[4]), maxbytes: Number(m[5]) };
  }
  return undefined;
}

/** keyQuotaHint is the fix for an engine error that says the user's key quota is used up, or undefined for any other error. */
export function keyQuotaHint(text: string): string | undefined {
  if (!/(session key|keyring)[^\n]*(disk quota exceeded|EDQUOT)/i.test(text)) return undefined;
  return (
    `the user's kernel key quota is used up (every node's containers hold keys: kernel.keys.maxkeys, kernel.keys.maxbytes; /proc/key-users shows it): ` +
    `${sysctlFix("kernel.keys.maxkeys", KEYS_ADVISED.maxkeys)} && ${sysctlFix("kernel.keys.maxbytes", KEYS_ADVISED.maxbytes)} (\`u7s init-host\` sets them at boot; \`u7s doctor\` checks them)`
  );
}

/**
 * keyFindings checks the user's key quota against one more node (adding=1): an error when the next
 * node would not get its keys (its runtime fails to create the container's session keyring), a warning
 * when it would be the last that fits; advise (doctor) also warns below KEYS_ADVISED. The use is the
 * kernel's own count (/proc/key-users), not an estimate; root's quota is not the one nodes use.
 */
export function keyFindings(host: HostProbe, adding: 0 | 1, advise = false): Finding[] {
  const { uid } = host.user();
  if (uid === 0) return [];
  const keyUsers = host.readFile("/proc/key-users");
  // a kernel without keyrings (CONFIG_KEYS off) has neither file, and no quota to run out of
  if (keyUsers === undefined && !host.exists("/proc/sys/kernel/keys")) return [];
  const sysctl = (name: string) => Number(host.readFile(`/proc/sys/kernel/keys/${name}`)?.trim());
  const usage = parseKeyUsers(keyUsers ?? "", uid) ?? { keys: 0, maxkeys: sysctl("maxkeys"), bytes: 0, maxbytes: sysctl("maxbytes") };
  const quotas = [
    { key: "kernel.keys.maxkeys", used: usage.keys, max: usage.maxkeys, per: KEYS_PER_NODE.keys, advised: KEYS_ADVISED.maxkeys, unit: "keys" },
    { key: "kernel.keys.maxbytes", used: usage.bytes, max: usage.maxbytes, per: KEYS_PER_NODE.bytes, advised: KEYS_ADVISED.maxbytes, unit: "bytes" },
  ];
  const findings: Finding[] = [];
  for (const { key, used, max, per, advised, unit } of quotas) {
    if (!Number.isInteger(max) || max <= 0) {
      findings.push({ level: "warn", message: `cannot read ${key}: not checked whether another node's containers get their keys` });
      continue;
    }
    const left = max - used;
    const is = `${key} is ${max} and this user holds ${used} ${unit} (/proc/key-users)`;
    const fix = sysctlFix(key, Math.max(advised, (Math.ceil(used / per) + adding + 1) * per * 2));
    if (adding === 1 && left < per) {
      findings.push({
        level: "error",
        message: `${is}: a node takes about ${per} (a session keyring per container, one per service of its systemd), so the next node cannot start ("unable to create session key: disk quota exceeded")`,
        hint: fix,
      });
    } else if (left - adding * per < per) {
      findings.push({ level: "warn", message: `${is}: with ${adding === 1 ? "this node" : "the nodes running"} no further node fits (about ${per} ${unit} each)`, hint: fix });
    } else if (advise && max < advised) {
      findings.push({
        level: "warn",
        message: `${is}: room for about ${Math.floor(left / per)} more bare node(s) of ${per}; a node running pods holds more (a keyring per container), and ${advised} is advised`,
        hint: fix,
      });
    } else {
      findings.push({ level: "ok", message: `${is}: room for about ${Math.floor(left / per)} more node(s) (${per} ${unit} each, measured on a bare node)` });
    }
  }
  return findings;
}
