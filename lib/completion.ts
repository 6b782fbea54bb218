import { settingOptions } from "./commands/_shared.ts";
import type { CommandDef, OptionDef } from "./commands/_types.ts";

/** SHELLS are the shells `u7s completion` writes scripts for. */
export const SHELLS = ["bash", "zsh", "fish"] as const;
/** Shell is one of SHELLS. */
export type Shell = (typeof SHELLS)[number];

/** CompletionInput is the command table the scripts are generated from, so they cannot drift from it. */
export interface CompletionInput {
  commands: readonly CommandDef[];
  globals: Readonly<Record<string, OptionDef>>;
  /** choices: fixed values of a command's positional argument (e.g. completion: bash zsh fish). */
  choices?: Readonly<Record<string, readonly string[]>>;
}

interface Flag {
  long: string;
  short?: string;
  takesValue: boolean;
  /** file: the value is a path (its placeholder names a FILE or DIR). */
  file: boolean;
  description: string;
}

interface Entry {
  names: string[];
  summary: string;
  flags: Flag[];
  choices: readonly string[];
}

function flagsOf(options: Readonly<Record<string, OptionDef>>): Flag[] {
  return Object.entries(options).map(([long, o]) => ({
    long,
    ...(o.short ? { short: o.short } : {}),
    takesValue: o.type === "string",
    file: o.type === "string" && /FILE|DIR|PATH/.test(o.value ?? ""),
    description: o.description,
  }));
}

/** entries flattens the command table: each command with its aliases, its flags (own, settings, global) and choices. */
function entries(input: CompletionInput): Entry[] {
  const globals = flagsOf(input.globals);
  return input.commands.map((c) => ({
    names: [c.name, ...(c.aliases ?? [])],
    summary: c.summary,
    // kubectl-like commands take the wrapped program's flags: offer only --help
    flags: c.rawArgs ? [] : [...flagsOf(c.options ?? {}), ...(c.settings ? flagsOf(settingOptions) : []), ...globals],
    choices: input.choices?.[c.name] ?? usageChoices(c.usage),
  }));
}

/** usageChoices reads fixed positional values from a usage line: `[compose|kubeadm-config] [flags]` gives both words. */
export function usageChoices(usage: string | undefined): string[] {
  const first = /^\[?([a-z0-9-]+(?:\|[a-z0-9-]+)+)\]?(?:\s|$)/.exec(usage ?? "");
  return first ? first[1]!.split("|") : [];
}

const flagWords = (flags: readonly Flag[]) => flags.flatMap((f) => [`--${f.long}`, ...(f.short ? [`-${f.short}`] : [])]);

/** bashScript completes commands, each command's flags, file names for FILE/DIR values, and fixed choices. */
export function bashScript(input: CompletionInput): string {
  const es = entries(input);
  const globals = flagsOf(input.globals);
  const valued = [...new Set(es.flatMap((e) => e.flags.filter((f) => f.takesValue && !f.file).flatMap((f) => flagWords([f]))))];
  const files = [...new Set(es.flatMap((e) => e.flags.filter((f) => f.file).flatMap((f) => flagWords([f]))))];
  const cases = es.map((e) => `    ${e.names.join("|")}) flags="${flagWords(e.flags).join(" ")}"; choices="${e.choices.join(" ")}" ;;`);
  return `# bash completion for u7s, generated from its command table by \`u7s completion bash\`.
# Load it now: source <(u7s completion bash)
# For every shell: u7s completion bash > ~/.local/share/bash-completion/completions/u7s
_u7s() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} cmd="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case \${COMP_WORDS[i]} in
      -*) ;;
      *) cmd=\${COMP_WORDS[i]}; break ;;
    esac
  done
  if [[ -z $cmd ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "${flagWords(globals).join(" ")} --version" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "help ${es.flatMap((e) => e.names).join(" ")}" -- "$cur"))
    fi
    return
  fi
  local flags="" choices=""
  case $cmd in
${cases.join("\n")}
    help) choices="${es.flatMap((e) => e.names).join(" ")}" ;;
  esac
  case $prev in
    ${files.length ? files.join("|") : "--no-such-flag"}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    ${valued.length ? valued.join("|") : "--no-such-flag"}) return ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  elif [[ -n $choices ]]; then
    COMPREPLY=($(compgen -W "$choices" -- "$cur"))
  fi
}
complete -F _u7s u7s
`;
}

/** zshQuote single-quotes a word for zsh. */
const zshQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
/** zshDescription escapes what _arguments and _describe treat specially: brackets and colons. */
const zshDescription = (s: string) => s.replace(/([[\]:\\])/g, "\\$1");

/** zshScript completes commands (with their summaries) and each command's flags (with descriptions). */
export function zshScript(input: CompletionInput): string {
  const es = entries(input);
  const commands = es.flatMap((e) => e.names.map((n) => `    ${zshQuote(`${n.replaceAll(":", "\\:")}:${e.summary}`)}`));
  const spec = (f: Flag) => {
    const desc = `[${zshDescription(f.description)}]`;
    const value = f.takesValue ? `:${f.long}:${f.file ? "_files" : " "}` : "";
    return f.short ? [zshQuote(`(-${f.short} --${f.long})-${f.short}${desc}${value}`), zshQuote(`(-${f.short} --${f.long})--${f.long}${desc}${value}`)] : [zshQuote(`--${f.long}${desc}${value}`)];
  };
  const cases = es.map((e) => {
    const args = [...e.flags.flatMap(spec), e.choices.length ? zshQuote(`1:argument:(${e.choices.join(" ")})`) : zshQuote("*::argument:_files")];
    return `    ${e.names.join("|")})\n      _arguments -s \\\n        ${args.join(" \\\n        ")}\n      ;;`;
  });
  return `#compdef u7s
# zsh completion for u7s, generated from its command table by \`u7s completion zsh\`.
# Load it now: source <(u7s completion zsh)    (after compinit)
# For every shell: u7s completion zsh > "\${fpath[1]}/_u7s"
_u7s() {
  local -a commands
  commands=(
${commands.join("\n")}
  )
  local i=2
  while [[ \${words[i]} == -* ]]; do (( i++ )); done
  if (( CURRENT <= i )); then
    _describe -t commands 'u7s command' commands
    return
  fi
  words=("\${(@)words[i,-1]}")
  (( CURRENT -= i - 1 ))
  case \${words[1]} in
${cases.join("\n")}
  esac
}
if [[ \${funcstack[1]} == _u7s ]]; then _u7s "$@"; else compdef _u7s u7s; fi
`;
}

/** fishQuote single-quotes a word for fish. */
const fishQuote = (s: string) => `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;

/** fishScript completes commands (with summaries), each command's flags and fixed choices. */
export function fishScript(input: CompletionInput): string {
  const es = entries(input);
  const all = es.flatMap((e) => e.names);
  const lines = [
    "# fish completion for u7s, generated from its command table by `u7s completion fish`.",
    "# Load it now: u7s completion fish | source",
    "# For every shell: u7s completion fish > ~/.config/fish/completions/u7s.fish",
    "complete -c u7s -f",
  ];
  for (const e of es) for (const n of e.names) lines.push(`complete -c u7s -n '__fish_use_subcommand' -a ${fishQuote(n)} -d ${fishQuote(e.summary)}`);
  for (const e of es) {
    const when = `-n ${fishQuote(`__fish_seen_subcommand_from ${e.names.join(" ")}`)}`;
    for (const f of e.flags) {
      const value = f.takesValue ? (f.file ? " -r -F" : " -r") : "";
      lines.push(`complete -c u7s ${when} -l ${f.long}${f.short ? ` -s ${f.short}` : ""}${value} -d ${fishQuote(f.description)}`);
    }
    if (e.choices.length) lines.push(`complete -c u7s ${when} -a ${fishQuote(e.choices.join(" "))}`);
  }
  lines.push(`complete -c u7s -n '__fish_seen_subcommand_from help' -a ${fishQuote(all.join(" "))}`);
  for (const f of flagsOf(input.globals)) lines.push(`complete -c u7s -n '__fish_use_subcommand' -l ${f.long}${f.short ? ` -s ${f.short}` : ""} -d ${fishQuote(f.description)}`);
  return `${lines.join("\n")}\n`;
}

/** completionScript writes the script for one shell. */
export function completionScript(shell: Shell, input: CompletionInput): string {
  return shell === "bash" ? bashScript(input) : shell === "zsh" ? zshScript(input) : fishScript(input);
}
