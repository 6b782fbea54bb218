#!/usr/bin/env bun
import { defaultDeps, run } from "./lib/cli.ts";

// No top-level await: the entry stays loadable as CommonJS too (compile.sh builds it as ESM).
void run(process.argv.slice(2), defaultDeps()).then((code) => {
  process.exitCode = code;
});
