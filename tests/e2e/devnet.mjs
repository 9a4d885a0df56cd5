// Builds the hansa binary and runs `hansa devnet` as a child process on free
// loopback ports, for the end-to-end tests. Not a test file itself.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { here } from "./compile.mjs";

/** The repository root (two levels above tests/e2e). */
export const repoRoot = resolve(here, "..", "..");

/**
 * Returns n distinct TCP ports on 127.0.0.1 that were free a moment ago (all
 * are held open until the last one is picked, so they differ).
 */
export async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise((ok, fail) => {
        srv.once("error", fail);
        srv.listen(0, "127.0.0.1", ok);
      });
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((ok) => s.close(() => ok()))));
  }
}

/** Builds ./cmd/hansa into a fresh temporary directory and returns the binary's path. */
export function buildHansa() {
  const out = mkdtempSync(join(tmpdir(), "hansa-e2e-bin-"));
  const bin = join(out, "hansa");
  const res = spawnSync("go", ["build", "-o", bin, "./cmd/hansa"], { cwd: repoRoot, encoding: "utf8" });
  if (res.error) throw res.error;
  if (res.status !== 0) throw new Error(`go build ./cmd/hansa failed (exit ${res.status}):\n${res.stderr}`);
  return bin;
}

/** Removes a binary buildHansa made, with its temporary directory. */
export function removeHansa(bin) {
  rmSync(dirname(bin), { recursive: true, force: true });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A running `hansa devnet` child process. Use Devnet.start, then stop() in
 * an after hook (it is safe to call twice).
 */
export class Devnet {
  constructor(bin, dir, ports, child) {
    this.bin = bin;
    this.dir = dir;
    this.child = child;
    // Clients use the devnet's entry point, the gateway in front of node1.
    this.rpcUrl = `http://127.0.0.1:${ports.gateway}`;
    this.wsUrl = `ws://127.0.0.1:${ports.gateway}`;
    this.nodeRpcUrl = `http://127.0.0.1:${ports.http}`;
    this.opsUrl = `http://127.0.0.1:${ports.ops}`;
    this.gatewayOpsUrl = `http://127.0.0.1:${ports.gatewayOps}`;
    this.adminUrl = `http://127.0.0.1:${ports.admin}`;
    this.stdout = "";
    this.stderr = "";
    this.exited = new Promise((ok) => child.on("close", (code, signal) => ok({ code, signal })));
    child.stdout.on("data", (b) => (this.stdout += b));
    child.stderr.on("data", (b) => (this.stderr += b));
    this.info = null;
  }

  /**
   * Starts `hansa devnet --dir DIR --nodes N` (default 1) on free ports and waits (up to
   * timeoutMs) until the node(s) and the gateway answer GET /readyz with 200. DIR is a new
   * temporary directory unless given. With several nodes, `follower: true` points rpcUrl and
   * wsUrl at a node that is not the Raft leader instead of the gateway.
   */
  static async start(bin, { dir, timeoutMs = 60_000, nodes = 1, follower = false } = {}) {
    for (let attempt = 1; ; attempt++) {
      try {
        const d = await Devnet.#startOnce(bin, { dir, timeoutMs, nodes });
        if (follower) await d.#useFollower();
        return d;
      } catch (e) {
        // Another process may take a port between picking and binding it.
        if (attempt >= 3 || !String(e).includes("address already in use")) throw e;
      }
    }
  }

  static async #startOnce(bin, { dir, timeoutMs, nodes }) {
    let tmpRoot = null;
    if (dir === undefined) {
      tmpRoot = mkdtempSync(join(tmpdir(), "hansa-e2e-"));
      dir = join(tmpRoot, "devnet");
    }
    const [http, ops, admin, gateway, gatewayOps] = await freePorts(5);
    const ports = { http, ops, admin, gateway, gatewayOps };
    const args = [
      "devnet", "--dir", dir, "--nodes", String(nodes), "--port-base", "0",
      "--http", `127.0.0.1:${ports.http}`,
      "--ops", `127.0.0.1:${ports.ops}`,
      "--admin", `127.0.0.1:${ports.admin}`,
      "--gateway", `127.0.0.1:${ports.gateway}`,
      "--gateway-ops", `127.0.0.1:${ports.gatewayOps}`,
    ];
    const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
    const d = new Devnet(bin, dir, ports, child);
    d.tmpRoot = tmpRoot;
    const killOnExit = () => child.kill("SIGKILL");
    process.once("exit", killOnExit);
    d.exited.then(() => process.removeListener("exit", killOnExit));
    try {
      await d.waitReady(timeoutMs);
    } catch (e) {
      child.kill("SIGKILL");
      await d.exited;
      d.cleanup();
      throw e;
    }
    d.info = JSON.parse(readFileSync(join(dir, "devnet.json"), "utf8"));
    return d;
  }

  /** Points rpcUrl and wsUrl at a node that is not the Raft leader. */
  async #useFollower() {
    const leader = await waitForLeader(this.adminUrl);
    const node = this.info.nodes.find((n) => n.id !== leader);
    if (!node) throw new Error(`no follower among ${JSON.stringify(this.info.nodes)}`);
    this.followerId = node.id;
    this.rpcUrl = node.rpc;
    this.wsUrl = node.ws;
  }

  async waitReady(timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    let exit = null;
    this.exited.then((e) => (exit = e));
    let last = "";
    while (Date.now() < deadline) {
      if (exit) throw new Error(`hansa devnet exited early (${JSON.stringify(exit)}):\n${this.stderr}`);
      try {
        const res = await fetch(`${this.opsUrl}/readyz`, { signal: AbortSignal.timeout(2_000) });
        last = `${res.status} ${await res.text()}`;
        if (res.status === 200) {
          const gw = await fetch(`${this.gatewayOpsUrl}/readyz`, { signal: AbortSignal.timeout(2_000) });
          last = `gateway ${gw.status} ${await gw.text()}`;
          // devnet.json gets the bound endpoints just before the banner.
          if (gw.status === 200 && this.stdout.includes("Hansa devnet is running")) return;
        }
      } catch (e) {
        last = String(e);
      }
      await sleep(100);
    }
    throw new Error(`hansa devnet not ready after ${timeoutMs} ms (last /readyz: ${last}):\n${this.stderr}`);
  }

  /**
   * Sends SIGTERM and waits for the process to exit; after timeoutMs it sends
   * SIGKILL. Resolves to { code, signal } of the exit.
   */
  async stop(timeoutMs = 30_000) {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.exited;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), timeoutMs);
    const res = await this.exited;
    clearTimeout(timer);
    return res;
  }

  /** Removes the temporary directory start created, if any (call after stop). */
  cleanup() {
    if (this.tmpRoot) rmSync(this.tmpRoot, { recursive: true, force: true });
  }
}

/** Asks a node's admin API for the Raft leader until there is one; returns its id. */
export async function waitForLeader(adminUrl, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(adminUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "raft_leader", params: [] }),
        signal: AbortSignal.timeout(2_000),
      });
      const { result } = await res.json();
      if (result) return result;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`no Raft leader after ${timeoutMs} ms`);
    await sleep(50);
  }
}
