// The foreground of `u7s up --job` in a real process: it must stay until a signal (signal handlers
// alone do not keep a process alive), take the first of SIGTERM/SIGINT/SIGHUP, and exit once disposed.
import { expect, test } from "bun:test";

const signals = new URL("../../../lib/job/signals.ts", import.meta.url).pathname;

test.each(["SIGTERM", "SIGINT", "SIGHUP"] as const)("the foreground waits for %s, then ends", async (sig) => {
  // no top-level await, as main.ts: a pending top-level await would keep the process alive by itself
  const script = `void import(${JSON.stringify(signals)}).then(async ({ processStopSignals }) => {
  const s = processStopSignals(); console.log("waiting"); const name = await s.stopped; s.dispose(); console.log("got " + name);
});`;
  const p = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
  const reader = (p.stdout as ReadableStream<Uint8Array>).getReader();
  let out = new TextDecoder().decode((await reader.read()).value);
  expect(out).toBe("waiting\n");
  await Bun.sleep(300);
  expect(p.exitCode).toBeNull(); // still there: nothing but the signal ends the wait
  p.kill(sig);
  for (let r = await reader.read(); !r.done; r = await reader.read()) out += new TextDecoder().decode(r.value);
  expect(await p.exited).toBe(0);
  expect(out).toBe(`waiting\ngot ${sig}\n`);
});
