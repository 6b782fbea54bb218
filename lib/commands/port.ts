import type { NodeConfig } from "../config/resolve.ts";
import { hostSide, otherTenantPorts, parsePublish, PUBLISH_SYNTAX, samePublishedPort, type Publish } from "../config/publish.ts";
import type { Engine } from "../engine/engine.ts";
import { UsageError } from "../errors.ts";
import { serviceKubeconfig, servicesArgs, syncServicePorts, WATCH_SECONDS, type SyncReport } from "../cluster/services.ts";
import { addForwarders, listForwarders, nodePublished, publishProblem, removeForwarders, type AddEnv, type NodePublished } from "../node/forward.ts";
import { runningNode } from "../node/lifecycle.ts";
import { nodeNames } from "../node/names.ts";
import { applierFor, nodeContext, nodeLock } from "./_node.ts";
import { boolFlag, dryRunFlag, jsonFlag } from "./_shared.ts";
import type { Args, CommandDef, Ctx } from "./_types.ts";

/** PORT_VERBS are `u7s port`'s subcommands. */
export const PORT_VERBS = ["add", "rm", "ls", "sync"] as const;
type Verb = (typeof PORT_VERBS)[number];

/** WATCH_RESYNC_MS: with --watch, a full sync this often even without events (a missed event is caught). */
const WATCH_RESYNC_MS = 60_000;
/** WATCH_SETTLE_MS: after an event, wait this long for more before syncing (a `kubectl apply` of many Services is one round). */
const WATCH_SETTLE_MS = 500;

/** parsePorts reads PORT arguments: the ports, and one problem line per malformed or repeated one. */
function parsePorts(verb: Verb, args: readonly string[]): { ports: Publish[]; problems: string[] } {
  if (args.length === 0) throw new UsageError(`u7s port ${verb}: no PORT given (${PUBLISH_SYNTAX}, e.g. \`u7s port ${verb} 30080\`)`);
  const problems: string[] = [];
  const ports: Publish[] = [];
  for (const a of args) {
    const p = parsePublish(a);
    if (typeof p === "string") problems.push(`u7s port ${verb} ${a}: ${p}${p.includes("(valid") ? "" : ` (valid: ${PUBLISH_SYNTAX}, e.g. 30080, 8080:30080 or 30053/udp)`}`);
    else if (ports.some((q) => samePublishedPort(p, q))) problems.push(`u7s port ${verb} ${a}: host port ${hostSide(p)} is given twice`);
    else ports.push(p);
  }
  return { ports, problems };
}

/** addEnv is what publishing works with. */
function addEnv(ctx: Ctx, args: Args, config: NodeConfig, engine: Engine): AddEnv {
  return { config, engine, log: ctx.log, applier: applierFor(ctx, args), host: ctx.host };
}

/** withLock runs fn holding the node's lock, except on a dry run (which changes nothing). */
function withLock<T>(ctx: Ctx, args: Args, config: NodeConfig, what: string, fn: () => Promise<T>): Promise<T> {
  return boolFlag(args, "dry-run") ? fn() : nodeLock(ctx, config, what, fn);
}

async function add(ctx: Ctx, args: Args, { ports, problems }: ReturnType<typeof parsePorts>): Promise<void> {
  const { config, engine } = await nodeContext(ctx);
  const env = addEnv(ctx, args, config, engine);
  await withLock(ctx, args, config, "u7s port add", async () => {
    const node = await nodePublished(engine, config).catch((err: unknown) => {
      throw problems.length > 0 ? new UsageError(problems) : err; // bad input first: it needs no node to be wrong
    });
    const forwarders = await listForwarders(engine, config);
    const tenants = otherTenantPorts(config.tenant);
    for (const p of ports) {
      const why = await publishProblem(p, node, forwarders, ctx.host, tenants);
      if (why !== undefined) problems.push(`u7s port add ${hostSide(p)}: ${why}`);
    }
    if (problems.length > 0) throw new UsageError(problems, { hint: "see `u7s port ls` for what is published" });
    await addForwarders(env, node, ports, "add");
    if (!env.applier.dryRun) for (const p of ports) ctx.log.info(`published ${hostSide(p)} -> node port ${p.nodePort} (${node.nodeIp})`);
  });
}

async function rm(ctx: Ctx, args: Args, { ports, problems }: ReturnType<typeof parsePorts>): Promise<void> {
  const { config, engine } = await nodeContext(ctx);
  const env = addEnv(ctx, args, config, engine);
  await withLock(ctx, args, config, "u7s port rm", async () => {
    const forwarders = await listForwarders(engine, config);
    const node = await nodePublished(engine, config).catch(() => undefined); // forwarders can outlive a node removed by hand
    const found = [];
    for (const p of ports) {
      const f = forwarders.find((x) => samePublishedPort(x.publish, p));
      if (f) {
        found.push(f);
        continue;
      }
      problems.push(`u7s port rm ${hostSide(p)}: ${notPublished(p, node, forwarders.map((x) => x.publish))}`);
    }
    if (problems.length > 0) throw new UsageError(problems, { hint: "see `u7s port ls` for what is published" });
    await removeForwarders(env, found);
    if (!env.applier.dryRun) for (const f of found) ctx.log.info(`unpublished ${hostSide(f.publish)}`);
  });
}

/** notPublished says why a port has no forwarder to remove. */
function notPublished(p: Publish, node: NodePublished | undefined, forwarded: readonly Publish[]): string {
  const own = Object.entries(node?.own ?? {}).find(([, port]) => port === p.hostPort);
  if (own) return `host port ${p.hostPort} is the node's own ${own[0]}; it is published as long as the node exists`;
  if (node?.publish.some((q) => samePublishedPort(p, q))) {
    return `port ${hostSide(p)} is published by the node itself (\`u7s up --publish\`): remove it from --publish / U7S_PUBLISH and run \`u7s up --recreate\``;
  }
  const other = forwarded.find((q) => q.hostPort === p.hostPort);
  if (other) return `port ${hostSide(p)} is not published, but ${hostSide(other)} is (\`u7s port rm ${hostSide(other)}\`)`;
  return `port ${hostSide(p)} is not published by \`u7s port add\` or \`u7s port sync\``;
}

/** PortRow is one line of `u7s port ls`. */
interface PortRow {
  hostIp: string | null;
  hostPort: number;
  nodePort: number;
  protocol: string;
  /** by: who publishes it: the node itself (its four ports, `up --publish`) or a forwarder (`port add`, `port sync`). */
  by: string;
  /** container: the container that publishes it (the node, or the forwarder). */
  container: string;
  state: string;
}

async function ls(ctx: Ctx, args: Args): Promise<void> {
  const { config, engine } = await nodeContext(ctx);
  const names = nodeNames(config);
  const state = await engine.inspectContainer(names.container);
  const node = state ? await nodePublished(engine, config).catch(() => undefined) : undefined;
  const rows: PortRow[] = [];
  if (state && node) {
    for (const [setting, port] of Object.entries(node.own)) {
      rows.push({ hostIp: null, hostPort: port, nodePort: port, protocol: setting === "PORT_FLANNEL" ? "udp" : "tcp", by: setting, container: names.container, state: state.status });
    }
    for (const p of node.publish) rows.push({ ...row(p), by: "up --publish", container: names.container, state: state.status });
  }
  for (const f of await listForwarders(engine, config)) rows.push({ ...row(f.publish), by: `port ${f.by}`, container: f.name, state: f.state.status });
  rows.sort((a, b) => a.hostPort - b.hostPort || a.protocol.localeCompare(b.protocol));
  if (boolFlag(args, "json")) {
    ctx.out.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  if (!state) ctx.log.info(`node ${names.container} does not exist`);
  const table = [["HOST", "NODE", "PROTO", "BY", "CONTAINER", "STATE"], ...rows.map((r) => [`${r.hostIp ? `${r.hostIp}:` : ""}${r.hostPort}`, String(r.nodePort), r.protocol, r.by, r.container, r.state])];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((t) => t[i]!.length)));
  ctx.out.write(table.map((t) => t.map((c, i) => (i === t.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n") + "\n");
}

const row = (p: Publish) => ({ hostIp: p.hostIp ?? null, hostPort: p.hostPort, nodePort: p.nodePort, protocol: p.protocol });

/** printReport logs one sync round; it returns whether every node port got published. */
function printReport(ctx: Ctx, r: SyncReport): boolean {
  for (const l of r.published) ctx.log.info(`published ${l}`);
  for (const l of r.unpublished) ctx.log.info(`unpublished ${l}`);
  for (const l of r.problems) ctx.log.warn(l);
  return r.problems.length === 0;
}

async function sync(ctx: Ctx, args: Args): Promise<number> {
  const { config, engine } = await nodeContext(ctx);
  const env = addEnv(ctx, args, config, engine);
  const round = async () => {
    await runningNode(config, engine);
    const kubeconfig = await serviceKubeconfig({ config, engine, log: ctx.log });
    const report = await withLock(ctx, args, config, "u7s port sync", () => syncServicePorts(env, kubeconfig));
    return { ok: printReport(ctx, report), kubeconfig };
  };
  if (!boolFlag(args, "watch")) {
    const { ok } = await round();
    if (!ok) ctx.log.hint("free the ports named above (or publish those node ports elsewhere with `u7s port add HOST_PORT:NODE_PORT`), then run `u7s port sync` again");
    return ok ? 0 : 1;
  }
  return watch(ctx, config, engine, round);
}

/**
 * watch keeps the host's ports in step with the cluster until stopped (SIGINT, SIGTERM: exit 0): a full
 * sync, then one more after each change kubectl's watch of Services reports (and every WATCH_RESYNC_MS
 * in any case). When the node is down or the cluster does not answer, it says so and tries again,
 * backing off to a minute.
 */
async function watch(ctx: Ctx, config: NodeConfig, engine: Engine, round: () => Promise<{ ok: boolean; kubeconfig: string }>): Promise<number> {
  const name = nodeNames(config).container;
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  // sleep ends early when u7s is told to stop
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      stop.signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
    });
  const warn = (err: unknown) => (err instanceof Error ? err.message.split("\n")[0]! : String(err));
  let failures = 0;
  ctx.log.info(`watching the Services of node ${name}'s cluster (stop with Ctrl-C)`);
  try {
    while (!stop.signal.aborted) {
      let kubeconfig: string;
      try {
        kubeconfig = (await round()).kubeconfig;
        failures = 0;
      } catch (err) {
        failures++;
        const wait = Math.min(60, 2 ** Math.min(failures, 6));
        ctx.log.warn(`cannot sync ports: ${warn(err)}; trying again in ${wait}s`);
        await sleep(wait * 1000);
        continue;
      }
      let changed = false;
      let ended = false;
      let wake: () => void = () => {};
      const argv = engine.execArgs(name, ["kubectl", ...servicesArgs(true)], { env: { KUBECONFIG: kubeconfig } });
      // the watch ends itself after WATCH_SECONDS (kubectl --request-timeout); the timeout here is a backstop
      const watching = ctx.runner(argv, { timeoutMs: (WATCH_SECONDS + 30) * 1000, signal: stop.signal, onStdout: () => ((changed = true), wake()) }).then(
        (r) => ((ended = true), wake(), r),
        (err: unknown) => ((ended = true), wake(), { exitCode: 1, stdout: "", stderr: warn(err) }),
      );
      while (!ended && !stop.signal.aborted) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, WATCH_RESYNC_MS);
          wake = () => (clearTimeout(timer), resolve());
          if (changed || ended) wake();
          stop.signal.addEventListener("abort", () => wake(), { once: true });
        });
        if (ended || stop.signal.aborted) break;
        await sleep(WATCH_SETTLE_MS);
        changed = false;
        try {
          await round();
        } catch (err) {
          ctx.log.warn(`cannot sync ports: ${warn(err)}`);
        }
      }
      const r = await watching;
      if (stop.signal.aborted) break;
      // a watch that ends on its own (its time is up, the apiserver restarted) is simply started again after a full sync
      if (r.exitCode !== 0 && r.stderr.trim() !== "") ctx.log.debug(`the Service watch ended (exit ${r.exitCode}): ${r.stderr.trim().split("\n").pop()}`);
      await sleep(1000);
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  ctx.log.info("stopped watching");
  return 0;
}

/** port publishes node ports on the host while the node runs, and keeps them in step with the cluster's Services. */
export const port: CommandDef = {
  name: "port",
  group: "node",
  summary: "publish node ports on the host while the node runs (add|rm|ls|sync)",
  usage: "add|rm|ls|sync [PORT...] [flags]",
  description:
    "add PORT...   publish each PORT on the host without restarting the node. PORT is\n" +
    "              " + PUBLISH_SYNTAX + " (NODE_PORT defaults to HOST_PORT). Each gets a\n" +
    "              forwarder container from the node's image (socat) on the node's network, publishing\n" +
    "              HOST_PORT and relaying to NODE_IP:NODE_PORT, restart always.\n" +
    "rm PORT...    remove the forwarders of these host ports.\n" +
    "ls            list every port the node publishes on the host: its own four, `up --publish`, forwarders.\n" +
    "sync          publish every node port of the cluster's NodePort and LoadBalancer Services (host port =\n" +
    "              node port) and remove the forwarders an earlier sync made for Services that are gone;\n" +
    "              --watch keeps doing so until stopped (it can run as a user service). Ports of `port add`\n" +
    "              and `up --publish` are never removed by sync.\n" +
    "A port in use, the node's own port, a port already published, or a malformed PORT: one line each,\n" +
    "exit 2, nothing changed. `u7s down` removes the forwarders; ports that must outlive `down` belong in\n" +
    "`u7s up --publish` (U7S_PUBLISH).",
  settings: true,
  maxPositionals: 99,
  options: {
    ...jsonFlag,
    watch: { type: "boolean", short: "w", description: "sync: keep publishing and unpublishing as Services change, until stopped" },
    ...dryRunFlag,
  },
  examples: ["u7s port add 30080", "u7s port add 8080:30080 30053/udp", "u7s port ls --json", "u7s port rm 30080", "u7s port sync", "u7s port sync --watch"],
  async run(ctx, args) {
    const [verb, ...rest] = args.positionals;
    if (verb === undefined || !(PORT_VERBS as readonly string[]).includes(verb)) {
      throw new UsageError(verb === undefined ? "u7s port: which one? (valid: add, rm, ls, sync)" : `u7s port: unknown subcommand ${JSON.stringify(verb)} (valid: ${PORT_VERBS.join(", ")})`, {
        hint: "see `u7s port --help`",
      });
    }
    const v = verb as Verb;
    const misplaced = [
      ...(boolFlag(args, "json") && v !== "ls" ? ["--json goes with `port ls`"] : []),
      ...(boolFlag(args, "watch") && v !== "sync" ? ["--watch goes with `port sync`"] : []),
      ...(boolFlag(args, "dry-run") && v === "ls" ? ["--dry-run goes with `port add`, `port rm` and `port sync`"] : []),
      ...((v === "ls" || v === "sync") && rest.length > 0 ? [`u7s port ${v} takes no PORT (got ${rest.join(" ")})`] : []),
    ];
    if (misplaced.length > 0) throw new UsageError(misplaced.map((m) => `u7s port ${v}: ${m}`));
    switch (v) {
      case "add":
        return add(ctx, args, parsePorts(v, rest));
      case "rm":
        return rm(ctx, args, parsePorts(v, rest));
      case "ls":
        return ls(ctx, args);
      case "sync":
        return sync(ctx, args);
    }
  },
};
