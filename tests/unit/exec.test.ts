import { describe, expect, test } from "bun:test";
import { U7sError } from "../../lib/errors.ts";
import { check, CommandError, formatCommand, lastLines, spawnRunner } from "../../lib/exec.ts";
import { REDACTED } from "../../lib/redact.ts";
import { RecordingRunner } from "../fixtures/fakes.ts";
import { wrongRows } from "../fixtures/table.ts";

/** shellWords asks a real sh how it splits a line: the argv it would pass to a command. */
async function shellWords(line: string): Promise<string[]> {
  const r = await spawnRunner(["sh", "-c", `for a in ${line}; do printf '%s\\0' "$a"; done`]);
  expect(r.stderr).toBe("");
  expect(r.exitCode).toBe(0);
  return r.stdout.split("\0").slice(0, -1);
}

describe("formatCommand", () => {
  test("quotes only what sh would read differently", async () => {
    const rows: [string[], string][] = [
      [["docker", "ps"], "docker ps"],
      [["podman", "run", "--name", "u7s-node-a"], "podman run --name u7s-node-a"],
      [["echo", "a b"], "echo 'a b'"],
      [["echo", "it's"], `echo "it's"`],
      [["echo", 'say "hi"'], `echo 'say "hi"'`],
      [["echo", "$HOME"], "echo \\$HOME"],
      [["echo", "$(id)"], "echo \\$\\(id\\)"],
      [["echo", "a;b"], "echo a\\;b"],
      [["echo", ""], "echo ''"],
      [["sh", "-c", "echo $X | tr a b"], "sh -c 'echo $X | tr a b'"],
      [["--opt=value", "10.100.7.0/24"], "--opt=value 10.100.7.0/24"],
    ];
    expect(await wrongRows(rows, formatCommand)).toEqual([]);
  });

  // Whatever the argument, sh must read the line back as the same argv.
  const ROUND_TRIP: string[][] = [
    ["plain"],
    ["a b", "c  d"],
    ["it's", "won't stop"],
    ['"double"', "mixed 'single' and \"double\""],
    ["$HOME", "${HOME}", "$(id)", "`id`"],
    ["a;b", "a|b", "a&b", "a>b", "a<b", "(x)", "{a,b}"],
    ["*", "?", "[a]", "~", "~root", "#comment"],
    ["back\\slash", "trailing\\"],
    ["bang!", "it's a bang!"],
    ["tab\tinside", "new\nline"],
    ["", "x", ""],
    ["ünïcödé", "ホスト"],
  ];
  test("sh reads every formatted line back as the same argv", async () => {
    expect(await wrongRows(ROUND_TRIP.map((argv) => [argv, argv] as const), (argv) => shellWords(formatCommand(argv)))).toEqual([]);
  });
});

// A join that fails prints its command: the bootstrap token and the CA hash must not be in it.
const TOKEN_ID = "3z6l2d";
const TOKEN_SECRET = "7gkt0123456789ab";
const TOKEN = `${TOKEN_ID}.${TOKEN_SECRET}`;
const HEX = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const JOIN = ["docker", "exec", "u7s-a", "kubeadm", "join", "u7s-cp:6443", "--token", TOKEN, "--discovery-token-ca-cert-hash", `sha256:${HEX}`];
const R = REDACTED;

describe("formatCommand redacts secrets (messages, --debug, --dry-run)", () => {
  test("each secret is REDACTED, unquoted; every other word is as before", async () => {
    const rows: [string[], string][] = [
      [JOIN, `docker exec u7s-a kubeadm join u7s-cp:6443 --token ${R} --discovery-token-ca-cert-hash ${R}`],
      [["kubeadm", "join", `--token=${TOKEN}`, "--certificate-key", "0f1e"], `kubeadm join --token=${R} --certificate-key ${R}`],
      [["kubectl", "--password", "it's secret", "get", "pods"], `kubectl --password ${R} get pods`],
      [["sh", "-c", `kubeadm join --token ${TOKEN}`], `sh -c 'kubeadm join --token '${R}`],
      [["env", "password=x1", "a b"], `env password=${R} 'a b'`],
      [["echo", ""], "echo ''"],
    ];
    expect(await wrongRows(rows, formatCommand)).toEqual([]);
  });

  test("the argv itself is kept (it is what runs)", () => {
    const argv = [...JOIN];
    formatCommand(argv);
    expect(argv).toEqual(JOIN);
  });
});

describe("lastLines", () => {
  test("the last n non-blank lines", async () => {
    const rows: [[string, number], string][] = [
      [["a\nb\nc\n", 2], "b\nc"],
      [["a\n\n\nb\n  \n", 5], "a\nb"],
      [["only", 10], "only"],
      [["", 3], ""],
      [[Array.from({ length: 20 }, (_, i) => `line ${i}`).join("\n"), 3], "line 17\nline 18\nline 19"],
    ];
    expect(await wrongRows(rows, ([text, n]) => lastLines(text, n))).toEqual([]);
  });
});

describe("spawnRunner", () => {
  test("true exits 0", async () => {
    expect(await spawnRunner(["true"])).toEqual({ exitCode: 0, stdout: "", stderr: "" });
  });

  test("false exits 1 and resolves (it does not reject)", async () => {
    expect((await spawnRunner(["false"])).exitCode).toBe(1);
  });

  test("stdout, stderr and the exit code come back separately", async () => {
    const r = await spawnRunner(["sh", "-c", "echo out; echo err >&2; exit 3"]);
    expect(r).toEqual({ exitCode: 3, stdout: "out\n", stderr: "err\n" });
  });

  test("arguments are passed as they are, never through a shell", async () => {
    const args = ["a b", "$(id)", "`id`", "x;y", "*", "'q'", ""];
    const r = await spawnRunner(["printf", "%s|", ...args]);
    expect(r.stdout).toBe(`${args.join("|")}|`);
  });

  test("input goes to stdin", async () => {
    const r = await spawnRunner(["cat"], { input: "line 1\nline 2\n" });
    expect(r.stdout).toBe("line 1\nline 2\n");
  });

  test("without input, stdin is empty (nothing waits on the terminal)", async () => {
    const r = await spawnRunner(["cat"], { timeoutMs: 5000 });
    expect(r).toEqual({ exitCode: 0, stdout: "", stderr: "" });
  });

  test("env adds to the environment", async () => {
    const r = await spawnRunner(["sh", "-c", 'printf "%s %s" "$U7S_TEST_VAR" "${PATH:+has-path}"'], {
      env: { U7S_TEST_VAR: "hello world" },
    });
    expect(r.stdout).toBe("hello world has-path");
  });

  test("timeoutMs kills a command that runs too long", async () => {
    const t0 = performance.now();
    const r = await spawnRunner(["sleep", "10"], { timeoutMs: 100 });
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(r.exitCode).not.toBe(0);
  });

  test("a killed command reports a non-zero exit code", async () => {
    const r = await spawnRunner(["sh", "-c", "kill -9 $$"]);
    expect(r.exitCode).not.toBe(0);
  });

  test("large output is read completely", async () => {
    const r = await spawnRunner(["sh", "-c", "i=0; while [ $i -lt 20000 ]; do echo line$i; i=$((i+1)); done"]);
    expect(r.stdout.split("\n")).toHaveLength(20001);
    expect(r.stdout).toEndWith("line19999\n");
  });

  test("stream: the command's live output is passed on redacted, stdout and stderr, and still captured whole", async () => {
    // In a child u7s process: stream writes to the process's own stdout and stderr.
    const script = [
      `import { spawnRunner } from ${JSON.stringify(`${import.meta.dir}/../../lib/exec.ts`)};`,
      `const r = await spawnRunner(["sh", "-c", ${JSON.stringify(`printf '[bootstrap-token] Using token: ${TOKEN_ID}.'; sleep 0.1; echo '${TOKEN_SECRET}'; echo 'error: public keys "sha256:${HEX}" are pinned' >&2; printf 'no newline'`)}], { stream: true });`,
      `process.stdout.write("\\ncaptured: " + JSON.stringify(r));`,
    ].join("\n");
    const child = await spawnRunner([process.execPath, "-e", script]);
    expect(child.exitCode, child.stderr).toBe(0);
    const [passed, captured] = child.stdout.split("\ncaptured: ");
    expect(passed).toBe(`[bootstrap-token] Using token: ${R}\nno newline`);
    expect(child.stderr).toBe(`error: public keys "${R}" are pinned\n`);
    expect(JSON.parse(captured!).stdout).toBe(`[bootstrap-token] Using token: ${TOKEN}\nno newline`);
  });

  test("an absolute path runs", async () => {
    const sh = Bun.which("sh")!;
    expect((await spawnRunner([sh, "-c", "exit 0"])).exitCode).toBe(0);
  });

  test("a missing binary rejects with a U7sError and a hint", async () => {
    const err = await spawnRunner(["u7s-no-such-binary-x"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(U7sError);
    const e = err as U7sError;
    expect(e.message).toBe("u7s-no-such-binary-x: command not found");
    expect(e.hint).toContain("install u7s-no-such-binary-x");
    expect(e.hint).toContain("PATH");
  });

  test("a missing path rejects with a U7sError naming it", async () => {
    const err = await spawnRunner(["/nonexistent/u7s/podman", "ps"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(U7sError);
    expect((err as U7sError).message).toContain("/nonexistent/u7s/podman");
  });

  test("an empty argv rejects with a U7sError", async () => {
    const err = await spawnRunner([]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(U7sError);
  });
});

describe("CommandError and check", () => {
  test("the message has the exit code and the quoted command; the detail has the stderr tail", () => {
    const stderr = Array.from({ length: 15 }, (_, i) => `err ${i}`).join("\n");
    const e = new CommandError(["podman", "run", "--name", "a b"], { exitCode: 125, stdout: "ignored", stderr });
    expect(e).toBeInstanceOf(U7sError);
    expect(e.exitCode).toBe(1);
    expect(e.message).toBe("command failed (exit code 125): podman run --name 'a b'");
    expect(e.detail).toBe(Array.from({ length: 10 }, (_, i) => `err ${i + 5}`).join("\n"));
    expect(e.argv).toEqual(["podman", "run", "--name", "a b"]);
  });

  test("a failed join shows its command and stderr without the token or the CA hash, ungarbled", () => {
    const stderr = `error execution phase preflight: none of the public keys "sha256:${HEX}" are pinned\n[bootstrap-token] ${TOKEN}\n`;
    const e = new CommandError(JOIN, { exitCode: 1, stdout: "", stderr });
    expect(e.message).toBe(`command failed (exit code 1): docker exec u7s-a kubeadm join u7s-cp:6443 --token ${R} --discovery-token-ca-cert-hash ${R}`);
    expect(e.detail).toBe(`error execution phase preflight: none of the public keys "${R}" are pinned\n[bootstrap-token] ${R}`);
    for (const secret of [TOKEN_ID, TOKEN_SECRET, HEX]) expect(`${e.message}\n${e.detail}\n${e.stack}`).not.toContain(secret);
    // what runs and what it said stay whole, for the code that looks at them
    expect(e.argv).toEqual(JOIN);
    expect(e.result.stderr).toBe(stderr);
  });

  test("the detail is stderr when there is some, else stdout, else nothing", async () => {
    const rows: [[string, string], string | undefined][] = [
      [["out\n", "boom\n"], "boom"],
      [["out line\n", ""], "out line"],
      [["", ""], undefined],
    ];
    expect(await wrongRows(rows, ([stdout, stderr]) => new CommandError(["x"], { exitCode: 2, stdout, stderr }).detail)).toEqual([]);
  });

  test("check with spawnRunner: a failing command rejects with the command and its stderr", async () => {
    const argv = ["sh", "-c", "echo first >&2; echo 'the last words' >&2; exit 3"];
    const err = await check(spawnRunner, argv).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    const e = err as CommandError;
    expect(e.message).toContain("exit code 3");
    expect(e.message).toContain(formatCommand(argv));
    expect(e.detail).toContain("the last words");
    expect(e.result.exitCode).toBe(3);
  });

  test("check with spawnRunner: success resolves with the result", async () => {
    expect((await check(spawnRunner, ["echo", "ok"])).stdout).toBe("ok\n");
  });

  test("check with a recording runner told to fail", async () => {
    const runner = new RecordingRunner().on(["podman", "info"], { stdout: "{}" }).failOn(["podman", "rm"], { exitCode: 2, stderr: "no such container\n" });
    expect((await check(runner.run, ["podman", "info"])).stdout).toBe("{}");
    const err = await check(runner.run, ["podman", "rm", "-f", "u7s-a"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).detail).toBe("no such container");
    expect(runner.argvs).toEqual([
      ["podman", "info"],
      ["podman", "rm", "-f", "u7s-a"],
    ]);
  });
});

describe("RecordingRunner (the fake other tests use)", () => {
  test("records argv and options; succeeds by default", async () => {
    const runner = new RecordingRunner();
    const r = await runner.run(["docker", "ps"], { input: "x" });
    expect(r).toEqual({ exitCode: 0, stdout: "", stderr: "" });
    expect(runner.calls).toEqual([{ argv: ["docker", "ps"], opts: { input: "x" } }]);
    expect(runner.commands).toEqual(["docker ps"]);
  });

  test("failOn by call index, by predicate and for every call; later rules win", async () => {
    const runner = new RecordingRunner()
      .failOn(1)
      .failOn((argv) => argv.includes("--bad"), { exitCode: 7 });
    expect((await runner.run(["a"])).exitCode).toBe(0);
    expect((await runner.run(["b"])).exitCode).toBe(1);
    expect((await runner.run(["c", "--bad"])).exitCode).toBe(7);
    runner.failAll({ exitCode: 9 });
    expect((await runner.run(["d"])).exitCode).toBe(9);
    runner.on(["e"], { stdout: "fine" });
    expect(await runner.run(["e"])).toEqual({ exitCode: 0, stdout: "fine", stderr: "" });
  });

  test("a failing call names the command on stderr", async () => {
    const runner = new RecordingRunner().failAll();
    expect((await runner.run(["podman", "rm", "a b"])).stderr).toContain("podman rm 'a b'");
  });

  test("missing rejects like spawnRunner does for a binary not on PATH", async () => {
    const runner = new RecordingRunner().missing(["nerdctl"]);
    const err = await runner.run(["nerdctl", "ps"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(U7sError);
    expect((err as U7sError).hint).toContain("PATH");
  });

  test("responders can compute from the argv", async () => {
    const runner = new RecordingRunner().on(["echo"], (argv) => ({ stdout: `${argv.slice(1).join(" ")}\n` }));
    expect((await runner.run(["echo", "a", "b"])).stdout).toBe("a b\n");
  });
});

describe("spawnRunner onStdout", () => {
  test("hands over stdout while the command still runs (a watch that never ends), and still captures it", async () => {
    const seen: { text: string; at: number }[] = [];
    const t0 = performance.now();
    const r = await spawnRunner(["sh", "-c", "echo first; sleep 0.5; echo second"], { onStdout: (text) => seen.push({ text, at: performance.now() - t0 }) });
    expect(r.stdout).toBe("first\nsecond\n");
    expect(seen.map((s) => s.text).join("")).toBe("first\nsecond\n");
    expect(seen[0]!.text).toBe("first\n");
    expect(seen[0]!.at).toBeLessThan(400);
  });
});
