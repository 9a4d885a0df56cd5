// Compiles contracts/Token.sol with solc-js (offline). Shared by the tests and
// by build-contract.mjs, which writes the artifact the Go tests read.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");

/** The directory of this package (tests/e2e). */
export const here = dirname(fileURLToPath(import.meta.url));

/** EVM version the chain enables; solc >= 0.8.30 defaults to a newer one. */
export const evmVersion = "prague";

/**
 * Compiles the contract `name` in the Solidity file `path` for evmVersion
 * with the optimizer (200 runs) and returns { contractName, compiler,
 * evmVersion, optimizer, abi, bytecode, deployedBytecode }. Throws on any
 * compiler error. Also used by internal/bench/contracts/build.mjs.
 */
export function compileContract(path, name) {
  const file = basename(path);
  const input = {
    language: "Solidity",
    sources: { [file]: { content: readFileSync(path, "utf8") } },
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
  const c = out.contracts[file][name];
  return {
    contractName: name,
    compiler: "solc " + solc.version(),
    evmVersion,
    optimizer: { enabled: true, runs: 200 },
    abi: c.abi,
    bytecode: "0x" + c.evm.bytecode.object,
    deployedBytecode: "0x" + c.evm.deployedBytecode.object,
  };
}

/** Compiles contracts/Token.sol (see compileContract). */
export function compileToken() {
  return compileContract(join(here, "contracts", "Token.sol"), "Token");
}
