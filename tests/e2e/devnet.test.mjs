// End-to-end test: a real `hansa devnet` process driven by ethers v6 over
// HTTP and WebSocket, with a token compiled by solc-js.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  ContractFactory,
  Contract,
  JsonRpcProvider,
  Wallet,
  WebSocketProvider,
  getAddress,
  id as keccakId,
  parseEther,
  parseUnits,
} from "ethers";
import { compileToken } from "./compile.mjs";
import { Devnet, buildHansa, removeHansa } from "./devnet.mjs";

const CHAIN_ID = 1337n;
const WAIT_MS = 30_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it returns a truthy value or timeoutMs passes. */
async function waitFor(what, fn, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Waits for the receipt of tx and asserts it succeeded. */
async function mined(tx) {
  const receipt = await tx.wait(1, WAIT_MS);
  assert.equal(receipt.status, 1, `tx ${tx.hash} failed`);
  return receipt;
}

// The whole flow runs twice: through the gateway of a one-node devnet, and
// against a follower of a three-node cluster (writes forwarded to the
// leader, reads and subscriptions served by the follower).
for (const setup of [
  { name: "one node, through the gateway", nodes: 1, follower: false },
  { name: "three-node cluster, on a follower", nodes: 3, follower: true },
]) describe(`hansa devnet with ethers v6: ${setup.name}`, { timeout: 600_000 }, () => {
  /** @type {Devnet} */
  let devnet;
  let bin;
  /** @type {JsonRpcProvider} */
  let provider;
  /** @type {WebSocketProvider} */
  let ws;
  let artifact;
  let deployer, alice, bob, carol;
  let token, deployReceipt;
  const supply = parseUnits("1000000", 18);

  before(async () => {
    artifact = compileToken();
    bin = buildHansa();
    devnet = await Devnet.start(bin, { nodes: setup.nodes, follower: setup.follower });
    provider = new JsonRpcProvider(devnet.rpcUrl, undefined, { cacheTimeout: -1, staticNetwork: true });
    const keys = devnet.info.accounts.map((a) => a.privateKey);
    assert.equal(keys.length, 10, "devnet.json lists 10 dev accounts");
    [deployer, alice, bob, carol] = keys.slice(0, 4).map((k) => new Wallet(k, provider));
  }, { timeout: 600_000 });

  after(async () => {
    // Always runs, also when a test failed: close the clients, then stop the node.
    if (ws) await ws.destroy();
    if (provider) provider.destroy();
    if (devnet) {
      const exit = await devnet.stop();
      devnet.cleanup();
      if (bin) removeHansa(bin);
      assert.equal(exit.code, 0, `hansa devnet exit after SIGTERM: ${JSON.stringify(exit)}\n${devnet.stderr}`);
    } else if (bin) {
      removeHansa(bin);
    }
  });

  test("chain id and funded dev accounts", async () => {
    assert.equal(devnet.info.chainId, 1337);
    assert.equal((await provider.getNetwork()).chainId, CHAIN_ID);
    assert.equal(await provider.send("eth_chainId", []), "0x539");
    // The well-known dev accounts of mnemonic "test test ... junk".
    assert.equal(getAddress(devnet.info.accounts[0].address), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    assert.equal(getAddress(devnet.info.accounts[9].address), "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720");
    for (const a of devnet.info.accounts) {
      assert.equal(new Wallet(a.privateKey).address, getAddress(a.address), "privateKey matches address");
      assert.equal(await provider.getBalance(a.address, 0), parseEther("10000"), a.address);
    }
  });

  test("deploy the token", async () => {
    const factory = new ContractFactory(artifact.abi, artifact.bytecode, deployer);
    const c = await factory.deploy("Hansa Test Token", "HTT", supply);
    deployReceipt = await mined(c.deploymentTransaction());
    const address = await c.getAddress();
    assert.equal(deployReceipt.contractAddress, address);
    assert.equal(deployReceipt.to, null);
    assert.equal(deployReceipt.from, deployer.address);
    assert.equal(await provider.getCode(address), artifact.deployedBytecode);
    token = new Contract(address, artifact.abi, deployer);
    assert.equal(await token.name(), "Hansa Test Token");
    assert.equal(await token.symbol(), "HTT");
    assert.equal(await token.decimals(), 18n);
    assert.equal(await token.totalSupply(), supply);
    assert.equal(await token.balanceOf(deployer.address), supply);
    assert.equal(await token.balanceOf(alice.address), 0n);
  });

  test("token transfers, logs and WebSocket subscriptions", async () => {
    const address = await token.getAddress();
    ws = new WebSocketProvider(devnet.wsUrl, undefined, { cacheTimeout: -1, staticNetwork: true });
    assert.equal((await ws.getNetwork()).chainId, CHAIN_ID);

    // Subscribe to Transfer logs (eth_subscribe "logs") and new heads (eth_subscribe "newHeads").
    const seen = new Map(); // tx hash -> [from, to, value]
    const wsToken = new Contract(address, artifact.abi, ws);
    await wsToken.on("Transfer", (from, to, value, ev) => {
      seen.set(ev.log.transactionHash, [from, to, value]);
    });
    const heads = new Set();
    await ws.on("block", (n) => heads.add(n));

    // The subscription request is in flight once on() returns; make sure it is
    // live before counting on it by sending marker transfers until one shows up.
    let live = false;
    for (let i = 0; i < 10 && !live; i++) {
      const r = await mined(await token.transfer(carol.address, 1n));
      const deadline = Date.now() + 3_000;
      while (!seen.has(r.hash) && Date.now() < deadline) await sleep(50);
      live = seen.has(r.hash);
    }
    assert.ok(live, "no Transfer event arrived over the WebSocket subscription");

    const amounts = [parseUnits("100", 18), parseUnits("250", 18), 7n];
    const aliceBefore = await token.balanceOf(alice.address);
    const receipts = [];
    for (const v of amounts) receipts.push(await mined(await token.transfer(alice.address, v)));
    const aliceToBob = await mined(await token.connect(alice).transfer(bob.address, 5n));
    const total = amounts.reduce((a, b) => a + b, 0n);
    assert.equal(await token.balanceOf(alice.address), aliceBefore + total - 5n);
    assert.equal(await token.balanceOf(bob.address), 5n);

    const transferTopic = keccakId("Transfer(address,address,uint256)");
    for (const [i, r] of receipts.entries()) {
      const got = await provider.getTransactionReceipt(r.hash);
      assert.equal(got.status, 1);
      assert.equal(got.blockHash, r.blockHash);
      assert.equal(got.logs.length, 1);
      assert.equal(got.logs[0].address, address);
      assert.equal(got.logs[0].topics[0], transferTopic);
      const parsed = token.interface.parseLog(got.logs[0]);
      assert.deepEqual([parsed.args[0], parsed.args[1], parsed.args[2]], [deployer.address, alice.address, amounts[i]]);
      const block = await provider.getBlock(r.blockNumber);
      assert.equal(block.hash, r.blockHash);
      assert.ok(block.transactions.includes(r.hash));
    }

    // eth_getLogs through provider.getLogs: the mint plus every transfer.
    const fromBlock = deployReceipt.blockNumber;
    const logs = await provider.getLogs({ address, topics: [transferTopic], fromBlock, toBlock: "latest" });
    const hashes = logs.map((l) => l.transactionHash);
    assert.equal(hashes[0], deployReceipt.hash, "the mint Transfer comes first");
    for (const r of [...receipts, aliceToBob]) assert.ok(hashes.includes(r.hash), `getLogs misses ${r.hash}`);
    assert.deepEqual(logs.map((l) => l.blockNumber), logs.map((l) => l.blockNumber).toSorted((a, b) => a - b));

    // contract.queryFilter with an indexed-argument filter: only transfers to bob.
    const toBob = await token.queryFilter(token.filters.Transfer(null, bob.address), fromBlock, "latest");
    assert.equal(toBob.length, 1);
    assert.equal(toBob[0].transactionHash, aliceToBob.hash);
    assert.equal(toBob[0].args.from, alice.address);
    assert.equal(toBob[0].args.value, 5n);
    const fromAlice = await token.queryFilter(token.filters.Transfer(alice.address), fromBlock);
    assert.deepEqual(fromAlice.map((e) => e.transactionHash), [aliceToBob.hash]);

    // The same transfers arrived over the WebSocket subscription, and their blocks as new heads.
    for (const [r, want] of [
      ...receipts.map((r, i) => [r, [deployer.address, alice.address, amounts[i]]]),
      [aliceToBob, [alice.address, bob.address, 5n]],
    ]) {
      await waitFor(`Transfer event of ${r.hash} over WebSocket`, () => seen.has(r.hash));
      assert.deepEqual(seen.get(r.hash), want);
      await waitFor(`new head ${r.blockNumber}`, () => heads.has(r.blockNumber));
    }
    await wsToken.removeAllListeners();
    await ws.removeAllListeners();
  });

  test("approve, allowance and transferFrom", async () => {
    const r = await mined(await token.approve(bob.address, 1000n));
    const approval = token.interface.parseLog(r.logs[0]);
    assert.equal(approval.name, "Approval");
    assert.deepEqual([...approval.args], [deployer.address, bob.address, 1000n]);
    assert.equal(await token.allowance(deployer.address, bob.address), 1000n);
    const before = await token.balanceOf(carol.address);
    await mined(await token.connect(bob).transferFrom(deployer.address, carol.address, 400n));
    assert.equal(await token.allowance(deployer.address, bob.address), 600n);
    assert.equal(await token.balanceOf(carol.address), before + 400n);
  });

  test("revert reasons reach ethers", async () => {
    const tooMuch = (await token.balanceOf(bob.address)) + 1n;
    const bobToken = token.connect(bob);
    for (const [what, call] of [
      ["staticCall", () => bobToken.transfer.staticCall(alice.address, tooMuch)],
      ["estimateGas", () => bobToken.transfer.estimateGas(alice.address, tooMuch)],
    ]) {
      await assert.rejects(call, (err) => {
        assert.equal(err.code, "CALL_EXCEPTION", `${what}: ${err}`);
        assert.equal(err.reason, "insufficient balance", `${what}: ${err}`);
        assert.equal(err.revert?.name, "Error");
        assert.deepEqual([...err.revert.args], ["insufficient balance"]);
        return true;
      });
    }
    await assert.rejects(
      () => token.connect(carol).transferFrom.staticCall(deployer.address, carol.address, 1n),
      (err) => err.code === "CALL_EXCEPTION" && err.reason === "insufficient allowance",
    );
    // Nothing was sent: bob's nonce is unchanged by failing calls.
    assert.equal(await provider.getTransactionCount(bob.address, "pending"), await provider.getTransactionCount(bob.address, "latest"));
  });

  test("native ether in legacy, EIP-2930 and EIP-1559 transactions", async () => {
    const to = Wallet.createRandom().address;
    const value = parseEther("1.5");
    const block = await provider.getBlock("latest");
    assert.equal(block.baseFeePerGas, 0n, "devnet gas is free");
    const txs = [
      { type: 0, to, value, gasPrice: 0n },
      { type: 1, to, value, gasPrice: 0n, accessList: [{ address: to, storageKeys: [keccakId("slot")] }] },
      { type: 2, to, value, maxFeePerGas: 0n, maxPriorityFeePerGas: 0n },
    ];
    for (const [i, req] of txs.entries()) {
      const before = await provider.getBalance(carol.address);
      const nonce = await provider.getTransactionCount(carol.address, "pending");
      const sent = await carol.sendTransaction(req);
      assert.equal(sent.nonce, nonce);
      const r = await mined(sent);
      assert.equal(r.type, req.type, `receipt type of tx ${i}`);
      assert.equal(r.to, to);
      assert.equal(r.gasUsed, req.type === 1 ? 21000n + 2400n + 1900n : 21000n);
      const tx = await provider.getTransaction(sent.hash);
      assert.equal(tx.type, req.type);
      assert.equal(tx.chainId, CHAIN_ID);
      assert.equal(tx.blockHash, r.blockHash);
      assert.equal(tx.value, value);
      if (req.type === 1) assert.deepEqual(tx.accessList.map((a) => [a.address, [...a.storageKeys]]), [[to, [keccakId("slot")]]]);
      assert.equal(await provider.getBalance(to), value * BigInt(i + 1));
      assert.equal(await provider.getBalance(carol.address), before - value - r.gasUsed * r.gasPrice);
      assert.equal(await provider.getTransactionCount(carol.address, "latest"), nonce + 1);
    }
  });
});
