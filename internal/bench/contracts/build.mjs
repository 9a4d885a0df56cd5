// Writes Simple.json (ABI and bytecode of Simple.sol) for hansa bench, which
// embeds it, with the same solc-js and settings as the end-to-end tests'
// contracts (tests/e2e/compile.mjs; offline). Run from the repository root:
//   (cd tests/e2e && npm ci) && node internal/bench/contracts/build.mjs
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { compileContract } from "../../../tests/e2e/compile.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const artifact = compileContract(join(here, "Simple.sol"), "Simple");
writeFileSync(join(here, "Simple.json"), JSON.stringify(artifact, null, 2) + "\n");
