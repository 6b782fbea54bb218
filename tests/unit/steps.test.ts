import { describe, expect, test } from "bun:test";
import { U7sError } from "../../lib/errors.ts";
import { Log } from "../../lib/log.ts";
import { runSteps, UndoList, type Step } from "../../lib/steps.ts";
import { CaptureWriter } from "../fixtures/fakes.ts";

/** logged runs steps with a plain (uncoloured) log; it returns the log's lines and the error, if any. */
async function logged(steps: Step[], undo?: UndoList, quiet = false) {
  const err = new CaptureWriter();
  const log = new Log(err, { color: false, quiet });
  const thrown = await runSteps(log, steps, undo).then(
    () => undefined,
    (e: unknown) => e,
  );
  // The duration varies: " ✓ title (0.0s)" becomes " ✓ title".
  return { lines: err.lines().map((l) => l.replace(/ \(\d+\.\d+s\)$/, "")), thrown };
}

/** fails throws a U7sError with everything a step's error can carry. */
const fails = (message: string) => async () => {
  throw new U7sError(message, { hint: "the hint", exitCode: 3, detail: "engine said no" });
};

describe("UndoList", () => {
  test("runs what was recorded newest first, once, and empties itself", async () => {
    const undo = new UndoList();
    const done: string[] = [];
    undo.add("network", async () => void done.push("network"));
    undo.add("volume", async () => void done.push("volume"));
    undo.add("container", async () => void done.push("container"));
    expect(undo.size).toBe(3);
    expect(await undo.run()).toEqual([]);
    expect(done).toEqual(["container", "volume", "network"]);
    expect(undo.size).toBe(0);
    expect(await undo.run()).toEqual([]);
    expect(done).toHaveLength(3);
  });

  test("a failing action does not stop the others; each failure is one line: what, then the error's first line", async () => {
    const undo = new UndoList();
    const done: string[] = [];
    undo.add("remove network u7s-a", async () => {
      throw new Error("network is in use\nby container x");
    });
    undo.add("remove volume u7s-a-var", async () => void done.push("volume"));
    undo.add("remove container u7s-a", async () => {
      throw "not an Error";
    });
    expect(await undo.run()).toEqual(["remove container u7s-a: not an Error", "remove network u7s-a: network is in use"]);
    expect(done).toEqual(["volume"]);
    expect(undo.size).toBe(0);
  });
});

describe("runSteps", () => {
  test("runs the steps in order, one progress line each; a skip prints its reason instead of running", async () => {
    const ran: string[] = [];
    const steps: Step[] = [
      { title: "Creating the network", run: async () => void ran.push("network") },
      { title: "Building the image", skip: async () => "already built", run: async () => void ran.push("image") },
      { title: "Creating the container", skip: async () => undefined, run: async () => void ran.push("container") },
    ];
    const { lines, thrown } = await logged(steps);
    expect(thrown).toBeUndefined();
    expect(ran).toEqual(["network", "container"]);
    expect(lines).toEqual([" ✓ Creating the network", " - Building the image: already built", " ✓ Creating the container"]);
  });

  test("an empty skip reason still skips (only undefined runs the step)", async () => {
    let ran = false;
    const { lines } = await logged([{ title: "T", skip: async () => "", run: async () => void (ran = true) }]);
    expect(ran).toBe(false);
    expect(lines).toEqual([" - T: "]);
  });

  test("a quiet log prints no progress but still runs the steps", async () => {
    let ran = false;
    const { lines } = await logged([{ title: "T", run: async () => void (ran = true) }], undefined, true);
    expect(ran).toBe(true);
    expect(lines).toEqual([]);
  });

  test("a failing step: what this run recorded is undone newest first, later steps do not run, the error says what was being done", async () => {
    const order: string[] = [];
    const undo = new UndoList();
    undo.add("made before runSteps", async () => void order.push("undo before"));
    const steps: Step[] = [
      { title: "Creating the network", run: async (u) => u.add("network", async () => void order.push("undo network")) },
      {
        title: "Creating the container",
        doing: "cannot create the node container",
        run: async (u) => {
          u.add("half-made container", async () => void order.push("undo container"));
          await fails("podman run failed")();
        },
      },
      { title: "Never", run: async () => void order.push("never") },
    ];
    const { lines, thrown } = await logged(steps, undo);
    expect(order).toEqual(["undo container", "undo network", "undo before"]);
    expect(lines).toEqual([" ✓ Creating the network", " ✗ Creating the container"]);
    expect(thrown).toBeInstanceOf(U7sError);
    const e = thrown as U7sError;
    expect(e.message).toBe("cannot create the node container: podman run failed");
    expect([e.hint, e.exitCode, e.detail]).toEqual(["the hint", 3, "engine said no"]);
    expect(undo.size).toBe(0);
  });

  test("without `doing`, the error prefix is `TITLE failed`; a plain Error becomes a U7sError with exit code 1", async () => {
    const { thrown } = await logged([
      {
        title: "Pulling",
        run: async () => {
          throw new Error("network down");
        },
      },
    ]);
    expect(thrown).toBeInstanceOf(U7sError);
    expect((thrown as U7sError).message).toBe("Pulling failed: network down");
    expect((thrown as U7sError).exitCode).toBe(1);
  });

  test("what could not be undone follows the step's detail, one indented line each; message, hint, exit code and cause are kept", async () => {
    const cause = new U7sError("podman run failed", { hint: "the hint", exitCode: 3, detail: "engine said no" });
    const steps: Step[] = [
      {
        title: "Creating the container",
        run: async (u) => {
          u.add("remove network u7s-a", async () => {
            throw new Error("network is in use");
          });
          u.add("remove volume u7s-a-var", async () => {
            throw new Error("volume is in use");
          });
          throw cause;
        },
      },
    ];
    const { thrown } = await logged(steps);
    expect(thrown).toBeInstanceOf(U7sError);
    const e = thrown as U7sError;
    expect(e.message).toBe("Creating the container failed: podman run failed");
    expect(e.detail).toBe("engine said no\ncould not undo:\n  remove volume u7s-a-var: volume is in use\n  remove network u7s-a: network is in use");
    expect([e.hint, e.exitCode, e.cause]).toEqual(["the hint", 3, cause]);
  });

  test("without a detail of its own, the error's detail is just what could not be undone", async () => {
    const steps: Step[] = [
      {
        title: "T",
        run: async (u) => {
          u.add("remove x", async () => {
            throw new Error("gone wrong");
          });
          throw new Error("boom");
        },
      },
    ];
    const { thrown } = await logged(steps);
    expect((thrown as U7sError).detail).toBe("could not undo:\n  remove x: gone wrong");
    expect((thrown as U7sError).exitCode).toBe(1);
  });

  test("each call starts with its own undo list when none is given", async () => {
    let undone = 0;
    await logged([{ title: "A", run: async (u) => u.add("a", async () => void undone++) }]);
    const { thrown } = await logged([{ title: "B", run: fails("b") }]);
    expect(thrown).toBeInstanceOf(U7sError);
    expect(undone).toBe(0);
  });
});
