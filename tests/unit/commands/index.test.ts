// lib/commands/_index.ts lets `u7s --help` and dispatch work without loading every command's module:
// each entry must say what its command says, and load that very command.
import { expect, test } from "bun:test";
import { COMMAND_INDEX, findEntry } from "../../../lib/commands/_index.ts";
import { COMMANDS } from "../../../lib/commands/_registry.ts";

test("the index lists the commands of COMMANDS, in the same order", () => {
  expect(COMMAND_INDEX.map((e) => e.name)).toEqual(COMMANDS.map((c) => c.name));
});

test("each entry says what its command says (aliases, group, summary, rawArgs) and loads that command", async () => {
  const wrong: string[] = [];
  for (const c of COMMANDS) {
    const e = findEntry(c.name);
    const said = { aliases: e?.aliases, group: e?.group, summary: e?.summary, rawArgs: e?.rawArgs };
    const says = { aliases: c.aliases, group: c.group, summary: c.summary, rawArgs: c.rawArgs };
    if (JSON.stringify(said) !== JSON.stringify(says)) wrong.push(`${c.name}: the index says ${JSON.stringify(said)}, the command ${JSON.stringify(says)}`);
    else if ((await e!.load()) !== c) wrong.push(`${c.name}: its entry loads another command`);
  }
  expect(wrong).toEqual([]);
});

test("aliases find their command's entry", () => {
  for (const c of COMMANDS) for (const a of c.aliases ?? []) expect(findEntry(a)?.name).toBe(c.name);
});

test("each command loaded first, on its own (as `u7s COMMAND` does), leaves no command of COMMANDS undefined (no import cycle)", async () => {
  const index = new URL("../../../lib/commands/_index.ts", import.meta.url).pathname;
  const registry = new URL("../../../lib/commands/_registry.ts", import.meta.url).pathname;
  const broken = await Promise.all(
    COMMAND_INDEX.map(async (e) => {
      const script = `const { findEntry } = await import(${JSON.stringify(index)}); await findEntry(${JSON.stringify(e.name)}).load();
const { COMMANDS } = await import(${JSON.stringify(registry)}); console.log(COMMANDS.every((c) => c !== undefined));`;
      const p = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
      const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      return out.trim() === "true" ? undefined : `${e.name}: ${err.split("\n").find((l) => /error/i.test(l)) ?? out.trim()}`;
    }),
  );
  expect(broken.filter((b) => b !== undefined)).toEqual([]);
  // One bun process per command, all at once: seconds on a busy machine, beyond bun's 5 s default.
}, 60_000);
