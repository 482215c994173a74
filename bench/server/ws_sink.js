// A discarding reader on Node's "ws": joins, asks for a flood, counts frames and throws
// them away. Its rate is what the bench server emits to a reader that parses WebSocket
// frames at native speed, the yardstick that shows the server is not the bottleneck.
//
// Usage: node ws_sink.js ENDPOINT PARAMS_JSON   (PARAMS: {"n": N, "size": S})
// Prints one JSON line: {"metrics": {"rate": ..., ...}}.
"use strict";

const WebSocket = require("ws");

const [endpoint, paramsJson] = process.argv.slice(2);
const { n, size } = JSON.parse(paramsJson);
const TOPIC = "room:bench";

const ws = new WebSocket(`${endpoint}/websocket?vsn=2.0.0`, { perMessageDeflate: false });
let phase = "join";
let received = 0;
let started;
let cpu0;

ws.on("open", () => ws.send(JSON.stringify(["1", "1", TOPIC, "phx_join", {}])));
ws.on("message", (data) => {
  if (phase === "flood") {
    // Broadcast frames start with [null,null,...; only the final reply has a ref.
    if (data[1] === 0x6e /* n */) {
      received += 1;
      return;
    }
    const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
    const usage = process.cpuUsage(cpu0);
    process.stdout.write(
      JSON.stringify({
        metrics: {
          rate: received / elapsed,
          elapsed_s: elapsed,
          received,
          cpu_s_per_100k: (((usage.user + usage.system) / 1e6) * 100000) / Math.max(1, received),
          mb_s: (received * size) / elapsed / 1e6,
        },
      }) + "\n",
    );
    ws.terminate();
    process.exit(received === n ? 0 : 1);
  }
  if (phase === "join") {
    phase = "flood";
    cpu0 = process.cpuUsage();
    started = process.hrtime.bigint();
    ws.send(JSON.stringify(["1", "2", TOPIC, "flood", { n, size }]));
  }
});
ws.on("error", (error) => {
  process.stdout.write(JSON.stringify({ error: String(error) }) + "\n");
  process.exit(1);
});
