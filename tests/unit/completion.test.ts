// Completion scripts come from the command table: every command, alias and flag; bash loads them
// and really completes (COMP_WORDS as bash's programmable completion sets them).
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GLOBAL_OPTIONS } from "../../lib/cli.ts";
import { COMMANDS } from "../../lib/commands/_registry.ts";
import { settingOptions } from "../../lib/commands/_shared.ts";
import { usageChoices } from "../../lib/completion.ts";
import { runCli } from "../fixtures/fakes.ts";

async function script(shell: string): Promise<string> {
  const r = await runCli(["completion", shell]);
  expect(r.code).toBe(0);
  return r.stdout;
}

/** bashComplete loads the bash script and completes the words (the last one is being typed). */
function bashComplete(scriptText: string, words: string[]): { replies: string[]; spec: string } {
  const dir = mkdtempSync(join(tmpdir(), "u7s-completion-"));
  try {
    const file = join(dir, "u7s.bash");
    writeFileSync(file, scriptText);
    const words_ = words.map((w) => `'${w.replaceAll("'", "'\\''")}'`).join(" ");
    const program = `source "$1" || exit 9
spec=$(complete -p u7s) || exit 8
COMP_WORDS=(${words_}); COMP_CWORD=${words.length - 1}; COMP_LINE="\${COMP_WORDS[*]}"; COMP_POINT=\${#COMP_LINE}
fn=$(sed -n 's/.*-F \\([^ ]*\\) .*/\\1/p' <<<"$spec")
"$fn" u7s "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD-1]}"
echo "$spec"
printf '%s\\n' "\${COMPREPLY[@]}"`;
    const r = Bun.spawnSync(["bash", "--norc", "--noprofile", "-c", program, "bash", file], { cwd: dir });
    expect(r.exitCode).toBe(0);
    const [spec, ...replies] = r.stdout.toString().split("\n").filter((l) => l !== "");
    return { replies, spec: spec! };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("u7s completion", () => {
  test("bash: the script passes bash -n", async () => {
    const r = Bun.spawnSync(["bash", "-n"], { stdin: new TextEncoder().encode(await script("bash")) });
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
  });

  test("bash: `u7s up --<TAB>` offers up's flags, its setting flags and the global ones, and nothing else", async () => {
    const { replies, spec } = bashComplete(await script("bash"), ["u7s", "up", "--"]);
    expect(spec).toBe("complete -F _u7s u7s");
    const up = COMMANDS.find((c) => c.name === "up")!;
    const want = [...Object.keys(up.options ?? {}), ...Object.keys(settingOptions), ...Object.keys(GLOBAL_OPTIONS)].map((f) => `--${f}`);
    expect(replies.sort()).toEqual(want.sort());
  });

  test("bash: commands and aliases; a prefix narrows them; global flags before the command are skipped", async () => {
    const text = await script("bash");
    const all = bashComplete(text, ["u7s", ""]).replies;
    for (const c of COMMANDS) for (const n of [c.name, ...(c.aliases ?? [])]) expect(all).toContain(n);
    expect(bashComplete(text, ["u7s", "--debug", "do"]).replies.sort()).toEqual(["doctor", "down", "down-v"]);
    expect(bashComplete(text, ["u7s", "--q"]).replies).toEqual(["--quiet"]);
  });

  test("bash: fixed arguments from the usage line, file names after FILE flags, nothing after other values", async () => {
    const text = await script("bash");
    expect(bashComplete(text, ["u7s", "render", ""]).replies).toEqual(["compose", "kubeadm-config", "dockerfile", "entrypoint"]);
    expect(bashComplete(text, ["u7s", "completion", "z"]).replies).toEqual(["zsh"]);
    expect(bashComplete(text, ["u7s", "up", "--image", ""]).replies).toEqual([]);
    expect(bashComplete(text, ["u7s", "down", "-"]).replies).toContain("-v");
  });

  test("zsh and fish scripts name every command and every flag of up", async () => {
    const zsh = await script("zsh");
    const fish = await script("fish");
    expect(zsh).toStartWith("#compdef u7s\n");
    for (const c of COMMANDS) {
      expect(zsh).toContain(`'${c.name}:`);
      expect(fish).toContain(`-a '${c.name}' -d `);
    }
    for (const f of Object.keys(COMMANDS.find((c) => c.name === "up")!.options ?? {})) {
      expect(zsh).toContain(`'--${f}[`);
      expect(fish).toContain(`__fish_seen_subcommand_from up' -l ${f}`);
    }
  });

  test.each([
    [["completion"], "u7s completion: which shell? (valid: bash, zsh, fish)"],
    [["completion", "tcsh"], 'u7s completion: unknown shell "tcsh" (valid: bash, zsh, fish)'],
  ])("%p: exit 2, one line", async (argv, line) => {
    const r = await runCli(argv);
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n")[0]).toBe(`error: ${line}`);
    expect(r.stdout).toBe("");
  });

  test("usage lines give fixed choices only when they list them", () => {
    expect(usageChoices("[compose|kubeadm-config] [flags]")).toEqual(["compose", "kubeadm-config"]);
    expect(usageChoices("bash|zsh|fish")).toEqual(["bash", "zsh", "fish"]);
    expect(usageChoices("[flags] -- CMD [ARG...]")).toEqual([]);
    expect(usageChoices(undefined)).toEqual([]);
  });
});
