// Writes contracts/Token.json (ABI and bytecode) for the Go end-to-end tests,
// which must not need npm. Run with: npm run build-contract
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { compileToken, here } from "./compile.mjs";

const artifact = compileToken();
const path = join(here, "contracts", "Token.json");
writeFileSync(path, JSON.stringify(artifact, null, 2) + "\n");
console.log(`wrote ${path} (${artifact.compiler}, evmVersion ${artifact.evmVersion})`);
