// End-to-end test: Foundry's `cast` (npm @foundry-rs/cast, a prebuilt binary)
// against a real `hansa devnet` process — reads, a native transfer, a token
// deployment, calls, logs and a revert reason, as a user would type them.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { compileToken } from "./compile.mjs";
import { Devnet, buildHansa, removeHansa } from "./devnet.mjs";

// The platform package holds the prebuilt binary; the registry this project
// uses publishes it for linux-amd64 only (see README.md).
const require = createRequire(import.meta.url);
const castBin = join(dirname(require.resolve("@foundry-rs/cast-linux-amd64/package.json")), "bin", "cast");

describe("hansa devnet with Foundry cast", { timeout: 600_000 }, () => {
  let devnet, bin, rpc, deployer, alice;

  /** Runs cast with args against the devnet and returns the finished process. */
  function castRaw(...args) {
    // --rpc-url goes right after the subcommand: `cast send --create` takes
    // everything after the code as constructor arguments.
    const [sub, ...rest] = args;
    const res = spawnSync(castBin, [sub, "--rpc-url", rpc, ...rest], { encoding: "utf8", timeout: 60_000 });
    if (res.error) throw res.error;
    return res;
  }

  /** Runs cast with args against the devnet; returns trimmed stdout or throws with stderr. */
  function cast(...args) {
    const res = castRaw(...args);
    if (res.status !== 0) {
      const err = new Error(`cast ${args.join(" ")} failed (exit ${res.status}): ${res.stderr}`);
      err.stderr = res.stderr;
      throw err;
    }
    return res.stdout.trim();
  }

  before(async () => {
    bin = buildHansa();
    devnet = await Devnet.start(bin);
    rpc = devnet.rpcUrl;
    [deployer, alice] = devnet.info.accounts;
  }, { timeout: 600_000 });

  after(async () => {
    if (devnet) {
      const exit = await devnet.stop();
      devnet.cleanup();
      assert.equal(exit.code, 0, `hansa devnet exit after SIGTERM: ${JSON.stringify(exit)}\n${devnet.stderr}`);
    }
    if (bin) removeHansa(bin);
  });

  test("chain id, block number, balance", () => {
    assert.equal(cast("chain-id"), "1337");
    assert.match(cast("block-number"), /^\d+$/);
    assert.equal(cast("balance", alice.address), "10000000000000000000000");
    assert.match(cast("client"), /^Hansa\/v/);
  });

  test("cast send moves ether and the receipt says so", () => {
    const before = BigInt(cast("balance", alice.address));
    const receipt = JSON.parse(cast("send", "--private-key", deployer.privateKey, alice.address, "--value", "1ether", "--json"));
    assert.equal(receipt.status, "0x1");
    const after = BigInt(cast("balance", alice.address));
    assert.equal(after - before, 10n ** 18n);
    const again = JSON.parse(cast("receipt", receipt.transactionHash, "--json"));
    assert.equal(again.blockHash, receipt.blockHash);
    const tx = JSON.parse(cast("tx", receipt.transactionHash, "--json"));
    assert.equal(tx.to.toLowerCase(), alice.address.toLowerCase());
  });

  test("deploy a token, call it, find its logs, see a revert reason", () => {
    const { bytecode } = compileToken();
    const deployed = JSON.parse(cast("send", "--private-key", deployer.privateKey, "--json", "--create", bytecode,
      "constructor(string,string,uint256)", "Cast Token", "CST", "1000"));
    assert.equal(deployed.status, "0x1");
    const token = deployed.contractAddress;
    assert.ok(cast("code", token).length > 2, "contract code is on chain");
    assert.equal(cast("call", token, "symbol()(string)"), '"CST"');
    assert.equal(cast("call", token, "balanceOf(address)(uint256)", deployer.address), "1000");

    const sent = JSON.parse(cast("send", "--private-key", deployer.privateKey, "--json", token,
      "transfer(address,uint256)", alice.address, "250"));
    assert.equal(sent.status, "0x1");
    assert.equal(cast("call", token, "balanceOf(address)(uint256)", alice.address), "250");

    const logs = JSON.parse(cast("logs", "--json", "--from-block", "0", "--address", token,
      "Transfer(address,address,uint256)"));
    const hashes = logs.map((l) => l.transactionHash);
    assert.ok(hashes.includes(sent.transactionHash), "the transfer's Transfer log is found");

    // cast 1.7 prints a failed call's error but may exit 0; the node's answer
    // (code 3, the reason, the ABI-encoded Error(string)) is what matters.
    const failed = castRaw("call", "--from", alice.address, token, "transfer(address,uint256)", deployer.address, "999999");
    const out = failed.stdout + failed.stderr;
    assert.match(out, /execution reverted: insufficient balance/);
    assert.match(out, /error code 3/);
  });
});
