import { U7sError, wrapError } from "./errors.ts";
import type { Log } from "./log.ts";

/** UndoList records how to remove what THIS run created, so a failure removes that and nothing else. */
export class UndoList {
  readonly #items: { what: string; fn: () => Promise<void> }[] = [];
  /** add records one undo action; actions run newest first. */
  add(what: string, fn: () => Promise<void>): void {
    this.#items.push({ what, fn });
  }
  /** size is how many actions are recorded. */
  get size(): number {
    return this.#items.length;
  }
  /** run undoes everything recorded, newest first; it returns what could not be undone, one line each, and never throws. */
  async run(): Promise<string[]> {
    const failed: string[] = [];
    for (const item of this.#items.splice(0).reverse()) {
      try {
        await item.fn();
      } catch (err) {
        failed.push(`${item.what}: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`);
      }
    }
    return failed;
  }
}

/** Step is one named step of a multi-step command. */
export interface Step {
  /** title is the progress line, e.g. "Initialising the control plane (kubeadm init)". */
  title: string;
  /** doing is the error prefix, e.g. "cannot initialise the control plane"; default: `${title} failed`. */
  doing?: string;
  /** skip returns a reason when the step has nothing to do (printed instead of running it). */
  skip?(): Promise<string | undefined>;
  /** run does the step; it records what it creates in undo. */
  run(undo: UndoList): Promise<void>;
}

/**
 * runSteps runs steps in order, one progress line each (` ✓ title (1.2s)`). When one fails, what this
 * run created is undone (newest first) and the error is rethrown, prefixed with what was being done
 * and followed by anything that could not be undone.
 */
export async function runSteps(log: Log, steps: readonly Step[], undo: UndoList = new UndoList()): Promise<void> {
  for (const s of steps) {
    const reason = s.skip ? await s.skip() : undefined;
    if (reason !== undefined) {
      log.info(` - ${s.title}: ${reason}`);
      continue;
    }
    try {
      await log.step(s.title, () => s.run(undo));
    } catch (err) {
      const left = await undo.run();
      const wrapped = wrapError(s.doing ?? `${s.title} failed`, err);
      if (left.length === 0) throw wrapped;
      throw new U7sError(wrapped.message, {
        exitCode: wrapped.exitCode,
        detail: [wrapped.detail, "could not undo:", ...left.map((l) => `  ${l}`)].filter(Boolean).join("\n"),
        hint: wrapped.hint,
        cause: err,
      });
    }
  }
}
