// npm run mutate: Stryker over the orchestration code (README, "Mutation testing").
//   npm run mutate -- --mutate lib/engine/base.ts                 one module (comma-separated globs for several)
//   U7S_MUTATE_TESTS=tests/unit/engine npm run mutate -- --mutate 'lib/engine/**/*.ts'
//                                                                 only these tests per mutant (quicker, a lower bound)
// tsconfigFile names no file on purpose: Stryker's tsconfig rewriting fails with TypeScript 7
// (ts.parseConfigFileTextToJson is not a function), and bun needs none.
const tests = process.env.U7S_MUTATE_TESTS ?? "tests/unit";

/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  testRunner: "command",
  commandRunner: { command: `node_modules/.bin/bun test ${tests}` },
  coverageAnalysis: "off",
  tsconfigFile: "stryker-no-tsconfig.json",
  mutate: ["lib/node/**/*.ts", "lib/engine/**/*.ts", "lib/cluster/**/*.ts", "lib/steps.ts", "lib/state/**/*.ts"],
  ignorePatterns: ["tests/.work", "tests/e2e", "dist", "reports", "bench", ".ci"],
  concurrency: 1, // 2 shared cores; --concurrency 2 on a quiet machine
  timeoutMS: 10000,
  reporters: ["clear-text", "progress", "html", "json"],
  htmlReporter: { fileName: "reports/mutation/index.html" },
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  tempDirName: ".stryker-tmp",
};
