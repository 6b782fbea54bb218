import { join } from "node:path";
import { U7sError } from "../errors.ts";

/** XdgEnv is the part of the environment the XDG base directories come from. */
export type XdgEnv = Readonly<Record<string, string | undefined>>;

/** xdgBase returns an XDG base directory: the variable when it is an absolute path, else the spec's default under HOME. */
function xdgBase(env: XdgEnv, variable: string, fallback: string): string {
  const v = env[variable];
  if (v !== undefined && v.startsWith("/")) return v;
  const home = env.HOME;
  if (home === undefined || home === "") throw new U7sError(`neither ${variable} nor HOME is set: u7s cannot place its files`, { hint: "set HOME (or XDG_CONFIG_HOME and XDG_STATE_HOME)" });
  return join(home, fallback);
}

/** StatePaths are where u7s keeps what it writes for one node on one host. */
export interface StatePaths {
  /** configDir: kubeconfig and join file ($XDG_CONFIG_HOME/u7s/HOST/NODE). */
  configDir: string;
  /** stateDir: lock and records ($XDG_STATE_HOME/u7s/HOST/NODE). */
  stateDir: string;
  /** kubeconfig is the admin kubeconfig for this node. */
  kubeconfig: string;
  /** joinFile is the join file `u7s join-command` writes on a control plane. */
  joinFile: string;
  /** upstreamJoinFile is upstream's join-command script `u7s join-command --format upstream` writes there. */
  upstreamJoinFile: string;
  /** lock is the per-node lock file. */
  lock: string;
}

/**
 * statePaths places a node's files under the XDG base directories, per host and per node: on a
 * home directory shared by many hosts, two hosts never write the same file. host is the machine's
 * real host name (not the HOSTNAME setting, which a user may set alike on several hosts).
 */
export function statePaths(env: XdgEnv, host: string, nodeName: string): StatePaths {
  const configDir = join(xdgBase(env, "XDG_CONFIG_HOME", ".config"), "u7s", host, nodeName);
  const stateDir = join(xdgBase(env, "XDG_STATE_HOME", ".local/state"), "u7s", host, nodeName);
  return {
    configDir,
    stateDir,
    kubeconfig: join(configDir, "kubeconfig"),
    joinFile: join(configDir, "join.json"),
    upstreamJoinFile: join(configDir, "join-command"),
    lock: join(stateDir, "lock"),
  };
}

/** HostDataPaths are where u7s keeps data of one host that no single node owns: loaded image bundles. */
export interface HostDataPaths {
  /** dataDir: $XDG_DATA_HOME/u7s/HOST. */
  dataDir: string;
  /** imagesDir holds the cluster images of loaded bundles (u7s image load), one archive per image. */
  imagesDir: string;
  /** imagesRecord lists those images (ref, file, sha256): what `u7s up` imports into new nodes. */
  imagesRecord: string;
}

/** hostDataPaths places a host's data under $XDG_DATA_HOME (default ~/.local/share)/u7s/HOST: per host, like statePaths. */
export function hostDataPaths(env: XdgEnv, host: string): HostDataPaths {
  const dataDir = join(xdgBase(env, "XDG_DATA_HOME", ".local/share"), "u7s", host);
  const imagesDir = join(dataDir, "images");
  return { dataDir, imagesDir, imagesRecord: join(imagesDir, "images.json") };
}

/** HOST_SEGMENT is what a host name may look like where it names a directory (no "/", no "." or ".."). */
const HOST_SEGMENT = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,253}$/;

/** isHostSegment tells whether s can name a host's state directory. */
export function isHostSegment(s: string): boolean {
  return HOST_SEGMENT.test(s);
}

/** xdgConfigHome is $XDG_CONFIG_HOME (default ~/.config): where systemd --user also looks for the user's units (systemd.unit(5)). */
export function xdgConfigHome(env: XdgEnv): string {
  return xdgBase(env, "XDG_CONFIG_HOME", ".config");
}

/** hostConfigRoot is $XDG_CONFIG_HOME/u7s/HOST: the config (kubeconfig, join files) of every node of a host. */
export function hostConfigRoot(env: XdgEnv, host: string): string {
  return join(xdgBase(env, "XDG_CONFIG_HOME", ".config"), "u7s", host);
}
