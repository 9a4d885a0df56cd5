// Writes Simple.json (ABI and bytecode of Simple.sol) for hansa bench, which
// embeds it. Uses the solc-js pinned by tests/e2e (offline). Run from the
// repository root:
//   (cd tests/e2e && npm ci) && node internal/bench/contracts/build.mjs
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "..", "..", "..", "tests", "e2e", "package.json"));
const solc = require("solc");
const evmVersion = "prague";

const input = {
  language: "Solidity",
  sources: { "Simple.sol": { content: readFileSync(join(here, "Simple.sol"), "utf8") } },
  settings: {
    evmVersion,
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors ?? []).filter((e) => e.severity === "error");
if (errors.length > 0) {
  throw new Error("solc: " + errors.map((e) => e.formattedMessage).join("\n"));
}
const c = out.contracts["Simple.sol"].Simple;
const artifact = {
  contractName: "Simple",
  compiler: "solc " + solc.version(),
  evmVersion,
  optimizer: { enabled: true, runs: 200 },
  abi: c.abi,
  bytecode: "0x" + c.evm.bytecode.object,
  deployedBytecode: "0x" + c.evm.deployedBytecode.object,
};
const path = join(here, "Simple.json");
writeFileSync(path, JSON.stringify(artifact, null, 2) + "\n");
console.log(`wrote ${path} (${artifact.compiler}, evmVersion ${evmVersion})`);
