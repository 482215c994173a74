// The official phoenix.js client (npm "phoenix" on "ws") as a benchmark contender.
//
// Usage: node phoenixjs_client.js WORKLOAD ENDPOINT PARAMS_JSON
//   ENDPOINT is the socket endpoint without "/websocket" (ws://127.0.0.1:PORT/socket).
// Prints one JSON line: {"metrics": {...}} or {"error": "..."}; the same workloads and
// metric names as bench/contenders/common.py.
"use strict";

const rssMb = () => process.memoryUsage().rss / (1024 * 1024);
const BARE_RSS_MB = rssMb(); // before the client libraries are loaded
const { Socket } = require("phoenix");
const WebSocket = require("ws");

const TOPIC = "room:bench";
const ECHO_PAYLOAD = { body: "ping" };
const [workload, endpoint, paramsJson] = process.argv.slice(2);
const params = JSON.parse(paramsJson || "{}");

const nowNs = () => process.hrtime.bigint();
const cpuSeconds = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index];
}

function latencySummary(samplesNs) {
  const us = samplesNs.map((ns) => Number(ns) / 1000).sort((a, b) => a - b);
  const mean = us.reduce((a, b) => a + b, 0) / us.length;
  return {
    p50_us: percentile(us, 0.5),
    p99_us: percentile(us, 0.99),
    p999_us: percentile(us, 0.999),
    mean_us: mean,
    count: us.length,
  };
}

function makeSocket() {
  // Node 20 has no global WebSocket: hand phoenix.js the "ws" class.
  return new Socket(endpoint, { transport: WebSocket, timeout: 120000 });
}

function connect(socket) {
  return new Promise((resolve, reject) => {
    const ok = socket.onOpen(() => {
      socket.off([ok, err]);
      resolve(socket);
    });
    const err = socket.onError((error) => {
      socket.off([ok, err]);
      reject(new Error(`socket error: ${error && error.message}`));
    });
    socket.connect();
  });
}

function join(channel) {
  return new Promise((resolve, reject) => {
    channel
      .join()
      .receive("ok", () => resolve(channel))
      .receive("error", (response) => reject(new Error(`join refused: ${JSON.stringify(response)}`)))
      .receive("timeout", () => reject(new Error("join timed out")));
  });
}

function push(channel, event, payload) {
  return new Promise((resolve, reject) => {
    channel
      .push(event, payload, 120000)
      .receive("ok", resolve)
      .receive("error", (response) => reject(new Error(`push refused: ${JSON.stringify(response)}`)))
      .receive("timeout", () => reject(new Error("push timed out")));
  });
}

async function joined(topic = TOPIC) {
  const socket = await connect(makeSocket());
  const channel = await join(socket.channel(topic, {}));
  return { socket, channel };
}

// -- workloads ------------------------------------------------------------------------------

async function rtt({ count, warmup = 200 }) {
  const { socket, channel } = await joined();
  for (let i = 0; i < warmup; i++) await push(channel, "echo", ECHO_PAYLOAD);
  const samples = new Array(count);
  for (let i = 0; i < count; i++) {
    const started = nowNs();
    await push(channel, "echo", ECHO_PAYLOAD);
    samples[i] = nowNs() - started;
  }
  socket.disconnect();
  return latencySummary(samples);
}

async function rttConcurrent({ count, threads, warmup = 200 }) {
  const { socket, channel } = await joined();
  for (let i = 0; i < warmup; i++) await push(channel, "echo", ECHO_PAYLOAD);
  const perWorker = Math.floor(count / threads);
  const samples = [];
  const worker = async () => {
    for (let i = 0; i < perWorker; i++) {
      const started = nowNs();
      await push(channel, "echo", ECHO_PAYLOAD);
      samples.push(nowNs() - started);
    }
  };
  const started = nowNs();
  await Promise.all(Array.from({ length: threads }, worker));
  const elapsed = Number(nowNs() - started) / 1e9;
  socket.disconnect();
  return { ...latencySummary(samples), throughput: samples.length / elapsed, threads, elapsed_s: elapsed };
}

async function receive({ n, size }) {
  const { socket, channel } = await joined();
  await push(channel, "flood", { n: 10, size }); // warm-up; all of it arrives before its reply
  let received = 0;
  let resolveDone;
  const done = new Promise((resolve) => (resolveDone = resolve));
  const handler = () => {
    received += 1;
    if (received === n) resolveDone();
  };
  channel.on("flood_msg", handler);
  const cpu0 = cpuSeconds();
  const started = nowNs();
  const reply = push(channel, "flood", { n, size });
  await done;
  const elapsed = Number(nowNs() - started) / 1e9;
  const cpu = cpuSeconds() - cpu0;
  await reply;
  socket.disconnect();
  return {
    rate: n / elapsed,
    elapsed_s: elapsed,
    received,
    cpu_s: cpu,
    cpu_s_per_100k: (cpu * 100000) / n,
    mb_s: (n * size) / elapsed / 1e6,
  };
}

async function connectJoin({ attempts, warmup = 10 }) {
  const samples = [];
  for (let i = 0; i < warmup + attempts; i++) {
    const started = nowNs();
    const { socket } = await joined();
    const elapsed = nowNs() - started;
    if (i >= warmup) samples.push(elapsed);
    await new Promise((resolve) => socket.disconnect(resolve));
  }
  const ms = samples.map((ns) => Number(ns) / 1e6).sort((a, b) => a - b);
  return {
    p50_ms: percentile(ms, 0.5),
    p99_ms: percentile(ms, 0.99),
    mean_ms: ms.reduce((a, b) => a + b, 0) / ms.length,
    count: ms.length,
  };
}

function settledRss() {
  if (global.gc) global.gc();
  return rssMb();
}

async function memory({ channels }) {
  const bare = BARE_RSS_MB;
  const imports = settledRss();
  const { socket, channel } = await joined();
  await push(channel, "echo", ECHO_PAYLOAD);
  const idle = settledRss();
  for (let i = 0; i < channels; i++) await join(socket.channel(`room:mem${i}`, {}));
  await push(channel, "echo", ECHO_PAYLOAD);
  const many = settledRss();
  socket.disconnect();
  return {
    bare_mb: bare,
    imports_mb: imports,
    idle_mb: idle,
    channels_mb: many,
    import_cost_mb: imports - bare,
    idle_over_imports_mb: idle - imports,
    channels_over_idle_mb: many - idle,
    channels,
  };
}

async function fanout({ clients, n, size }) {
  const before = settledRss();
  const topic = "room:fanout";
  const sockets = [];
  const counts = new Array(clients).fill(0);
  let complete = 0;
  let resolveDone;
  const done = new Promise((resolve) => (resolveDone = resolve));
  const channels = [];
  for (let c = 0; c < clients; c++) {
    const socket = await connect(makeSocket());
    const channel = await join(socket.channel(topic, {}));
    channel.on("flood_msg", () => {
      counts[c] += 1;
      if (counts[c] === n && ++complete === clients) resolveDone();
    });
    sockets.push(socket);
    channels.push(channel);
  }
  const connected = settledRss();
  const cpu0 = cpuSeconds();
  const started = nowNs();
  const reply = push(channels[0], "fanout", { n, size });
  await done;
  const elapsed = Number(nowNs() - started) / 1e9;
  const cpu = cpuSeconds() - cpu0;
  await reply;
  for (const socket of sockets) socket.disconnect();
  const total = clients * n;
  return {
    rate: total / elapsed,
    elapsed_s: elapsed,
    delivered: counts.reduce((a, b) => a + b, 0),
    clients,
    threads: 1,
    threads_per_client: 0,
    rss_per_client_mb: (connected - before) / clients,
    cpu_s_per_100k: (cpu * 100000) / total,
  };
}

const WORKLOADS = { rtt, rtt_concurrent: rttConcurrent, receive, connect_join: connectJoin, memory, fanout };

async function main() {
  const run = WORKLOADS[workload];
  if (run === undefined) throw new Error(`unknown workload ${workload}`);
  const metrics = await run(params);
  process.stdout.write(JSON.stringify({ metrics }) + "\n");
  process.exit(0);
}

main().catch((error) => {
  process.stdout.write(JSON.stringify({ error: String((error && error.stack) || error) }) + "\n");
  process.exit(1);
});
