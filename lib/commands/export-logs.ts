import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import type { NodeConfig } from "../config/resolve.ts";
import type { Engine } from "../engine/engine.ts";
import { errnoText, U7sError, UsageError } from "../errors.ts";
import { check, formatCommand, type RunResult } from "../exec.ts";
import { runDoctor } from "../host/doctor.ts";
import { Log } from "../log.ts";
import { nodeNames } from "../node/names.ts";
import { redact } from "../redact.ts";
import { refuseNonRegular } from "../state/files.ts";
import { VERSION } from "../versions.ts";
import { freeBytes } from "./doctor.ts";
import { nodeContext } from "./_node.ts";
import { findEntry } from "./_index.ts";
import { stringFlag } from "./_shared.ts";
import type { Args, CommandDef, Ctx } from "./_types.ts";

/** KUBE_NAMESPACES are the namespaces whose pods' logs go into the bundle. */
export const KUBE_NAMESPACES = ["kube-system", "kube-flannel"] as const;

/** CONCURRENCY bounds the engine commands run at once (each `exec` is a process; Podman's cost 50-100 ms). */
const CONCURRENCY = 4;

/** Item is one file of the bundle and how to get its text. */
interface Item {
  path: string;
  collect(): Promise<string>;
}

/** outputText is a command's output for the bundle; a failure is recorded in the file rather than failing the export. */
function outputText(argv: readonly string[], r: RunResult): string {
  if (r.exitCode === 0) return r.stdout;
  return `# ${formatCommand(argv)} exited ${r.exitCode}\n${r.stdout}${r.stderr}`;
}

/** inParallel runs fns with at most `limit` at once, keeping their order. */
async function inParallel<T>(fns: readonly (() => Promise<T>)[], limit: number): Promise<T[]> {
  const out: T[] = new Array(fns.length);
  let next = 0;
  const worker = async () => {
    while (next < fns.length) {
      const i = next++;
      out[i] = await fns[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, fns.length) }, worker));
  return out;
}

/** captured runs another u7s command in process (same settings) and returns what it printed. */
async function captured(ctx: Ctx, name: string, values: Args["values"]): Promise<string> {
  const c = await findEntry(name)?.load();
  if (!c) throw new U7sError(`internal: no command ${name}`);
  let text = "";
  const out = { isTTY: false, write: (t: string) => void (text += t) };
  const log = new Log({ isTTY: false, write: () => undefined }, { color: false, quiet: true });
  await c.run({ ...ctx, out, log }, { values, positionals: [], rest: [] });
  return text;
}

/** hostItems are the bundle's files that need no node: u7s's view of the host and the engine. */
function hostItems(ctx: Ctx, config: NodeConfig, engine: Engine): Item[] {
  const run = async (argv: string[]) => outputText(argv, await ctx.runner(argv));
  return [
    { path: "u7s/version.txt", collect: async () => `${VERSION}\n` },
    { path: "u7s/config.txt", collect: () => captured(ctx, "config", {}) },
    { path: "u7s/status.json", collect: () => captured(ctx, "status", { json: true }) },
    {
      path: "u7s/doctor.json",
      collect: async () => `${JSON.stringify(await runDoctor({ config, engine, host: ctx.host, runner: ctx.runner, env: ctx.env, freeBytes }), null, 2)}\n`,
    },
    { path: "engine/info.json", collect: () => run([engine.binary, "info", "--format", "{{json .}}"]) },
    { path: "engine/version.txt", collect: () => run([engine.binary, "version"]) },
  ];
}

/** nodeItems are the node container's inspect output, the engine's log of it, and its journal (whole, kubelet, containerd). */
function nodeItems(ctx: Ctx, engine: Engine, name: string): Item[] {
  const run = async (argv: string[]) => outputText(argv, await ctx.runner(argv));
  const inNode = async (cmd: string[]) => outputText(engine.execArgs(name, cmd), await engine.exec(name, cmd));
  const journal = (unit?: string) => inNode(["journalctl", "--no-pager", "--boot", "--output", "short-iso", ...(unit ? ["--unit", unit] : [])]);
  return [
    { path: "node/inspect.json", collect: () => run([engine.binary, "container", "inspect", name]) },
    { path: "node/container.log", collect: async () => { const argv = engine.logsArgs(name, {}); const r = await ctx.runner(argv); return `${r.stdout}${r.stderr}`; } },
    { path: "node/journal.log", collect: () => journal() },
    { path: "node/kubelet.log", collect: () => journal("kubelet") },
    { path: "node/containerd.log", collect: () => journal("containerd") },
    { path: "node/units.txt", collect: () => inNode(["systemctl", "list-units", "--all", "--no-pager"]) },
  ];
}

/** clusterItems are `kubectl get` of nodes and pods, and the logs of every pod in KUBE_NAMESPACES. */
async function clusterItems(engine: Engine, name: string): Promise<Item[]> {
  const kubectl = async (args: string[]) => {
    const cmd = ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", ...args];
    return outputText(engine.execArgs(name, cmd), await engine.exec(name, cmd));
  };
  const items: Item[] = [
    { path: "cluster/nodes.txt", collect: () => kubectl(["get", "nodes", "-o", "wide"]) },
    { path: "cluster/pods.txt", collect: () => kubectl(["get", "pods", "--all-namespaces", "-o", "wide"]) },
  ];
  const list = await engine.exec(name, ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "get", "pods", "--all-namespaces", "-o", "jsonpath={range .items[*]}{.metadata.namespace} {.metadata.name}{\"\\n\"}{end}"]);
  if (list.exitCode !== 0) return items;
  for (const line of list.stdout.split("\n")) {
    const [ns, pod] = line.trim().split(" ");
    if (!ns || !pod || !(KUBE_NAMESPACES as readonly string[]).includes(ns)) continue;
    items.push({ path: `cluster/pods/${ns}/${pod}.log`, collect: () => kubectl(["logs", "--namespace", ns, pod, "--all-containers", "--prefix", "--timestamps"]) });
  }
  return items;
}

/** defaultDir names a new bundle directory after the node and the time, in the working directory. */
function defaultDir(nodeName: string): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return `u7s-logs-${nodeName}-${stamp}`;
}

/** createPrivate creates (or empties) file with mode 0600, whatever the umask and the mode of a file there before. */
async function createPrivate(file: string): Promise<void> {
  let fh;
  try {
    fh = await open(file, "w", 0o600);
  } catch (err) {
    throw new U7sError(`cannot write ${file}: ${errnoText(err)}`);
  }
  try {
    await fh.chmod(0o600);
  } finally {
    await fh.close();
  }
}

/** exportLogs writes a bundle for a maintainer: node journal, kubelet and containerd logs, status, settings, engine info, cluster state; secrets redacted. */
export const exportLogs: CommandDef = {
  name: "export-logs",
  group: "node",
  summary: "write the node's logs and state to a directory or a .tar.gz, secrets removed",
  usage: "[DIR] [-o FILE.tar.gz] [flags]",
  description:
    "Like `kind export logs`: the node's journal (whole, kubelet, containerd), its units, the engine's log and inspect\n" +
    "output of the node container, `u7s status --json`, `u7s config`, `u7s doctor --json`, the engine's info and\n" +
    "version and, when a cluster is up, `kubectl get` of nodes and pods plus the logs of the pods in kube-system and\n" +
    "kube-flannel. Private keys, kubeconfig credentials and tokens are removed from every file; no credential file\n" +
    "is copied. Files are 0600 and directories 0700 from the start; the -o archive is created 0600 before tar\n" +
    "writes it. DIR (default u7s-logs-NODE_NAME-TIME) must not exist yet. Prints the bundle's path.",
  settings: true,
  maxPositionals: 1,
  options: {
    output: { type: "string", short: "o", value: "FILE.tar.gz", description: "write one gzip-compressed tar file instead of a directory" },
  },
  examples: ["u7s export-logs", "u7s export-logs -o u7s-logs.tar.gz", "u7s export-logs /tmp/u7s-logs"],
  async run(ctx, args) {
    const archive = stringFlag(args, "output");
    const dirArg = args.positionals[0];
    if (archive !== undefined && dirArg !== undefined) throw new UsageError("u7s export-logs: give a DIR or -o FILE.tar.gz, not both");
    if (archive !== undefined && !/\.(tar\.gz|tgz)$/.test(archive)) throw new UsageError(`-o ${JSON.stringify(archive)}: not a .tar.gz or .tgz file name`);
    if (dirArg !== undefined && existsSync(dirArg)) throw new UsageError(`${resolve(dirArg)} exists already: name a new directory`);
    if (archive !== undefined) await refuseNonRegular(archive);
    const { config, engine } = await nodeContext(ctx);
    const name = nodeNames(config).container;
    const bundleName = archive ? basename(archive).replace(/\.(tar\.gz|tgz)$/, "") : basename(dirArg ?? defaultDir(config.nodeName));
    const work = archive ? mkdtempSync(join(tmpdir(), "u7s-export-")) : undefined;
    const root = archive ? join(work!, bundleName) : resolve(dirArg ?? defaultDir(config.nodeName));
    try {
      try {
        mkdirSync(root, { mode: 0o700 });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code === "EEXIST") throw new UsageError(`${root} exists already: name a new directory`);
        throw new U7sError(`cannot create ${root}: ${e.message}`);
      }
      const state = await engine.inspectContainer(name);
      if (!state) ctx.log.warn(`node ${name} does not exist: the bundle has the engine's and u7s's view only`);
      else if (!state.running) ctx.log.warn(`node ${name} is ${state.status}: no journal or cluster state, only the engine's log of it`);
      const items = hostItems(ctx, config, engine);
      if (state) items.push(...nodeItems(ctx, engine, name).filter((i) => state.running || !i.path.match(/journal|kubelet|containerd|units/)));
      if (state?.running) {
        const hasCluster = (await engine.exec(name, ["test", "-f", "/etc/kubernetes/admin.conf"])).exitCode === 0;
        if (hasCluster) items.push(...(await ctx.log.step("Listing the cluster's pods", () => clusterItems(engine, name))));
      }
      await ctx.log.step(`Collecting ${items.length} files`, async () => {
        const texts = await inParallel(
          items.map((i) => () => i.collect().catch((err: unknown) => `# failed: ${err instanceof Error ? err.message : String(err)}\n`)),
          CONCURRENCY,
        );
        items.forEach((item, n) => {
          const file = join(root, item.path);
          mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
          writeFileSync(file, redact(texts[n]!), { mode: 0o600 });
        });
      });
      if (archive) {
        const target = resolve(archive);
        await ctx.log.step(`Writing ${archive}`, async () => {
          // The archive holds the node's logs: 0600 before tar writes a byte (tar would create it with the
          // umask's 0644, and an existing file keeps its mode), so no one else can read it at any moment.
          await createPrivate(target);
          await check(ctx.runner, ["tar", "-czf", target, "-C", work!, bundleName]);
        });
        ctx.out.write(`${target}\n`);
      } else {
        ctx.out.write(`${root}\n`);
      }
    } finally {
      if (work) rmSync(work, { recursive: true, force: true });
    }
  },
};
