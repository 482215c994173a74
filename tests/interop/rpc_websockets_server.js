// A stock rpc-websockets server (npm rpc-websockets) for the interop tests.
// Usage: node rpc_websockets_server.js [port]   (0 or nothing: any free port)
// Prints {"port": N} on stdout once listening, on 127.0.0.1 only.
"use strict";
const { Server } = require("rpc-websockets");

const port = Number(process.argv[2] || 0);
const server = new Server({ host: "127.0.0.1", port });

server.register("sum", (params) => params.reduce((a, b) => a + b, 0));
server.register("echo", (params) => params);
server.register("fail", () => {
  // A thrown plain object becomes the JSON-RPC error as is (code, message, data).
  throw { code: -32050, message: "refused on purpose", data: { why: "test", n: 1 } };
});
server.register("slow", (params) => new Promise((resolve) => setTimeout(() => resolve(params[1]), params[0])));
server.register("secret", () => "the secret").protected();
server.setAuth((params) => params.user === "alice" && params.password === "wonderland");

server.event("feedUpdated");
server.event("vip").protected();
let sequence = 0;
// Emits `count` events named `name` (one object param each, in order).
server.register("emit", ([name, count]) => {
  for (let i = 0; i < count; i++) server.emit(name, { seq: ++sequence });
  return count;
});
// Emits events with several positional params.
server.register("emitArgs", ([name, ...args]) => {
  server.emit(name, ...args);
  return true;
});
server.register("subscribers", ([name]) => (server.namespaces["/"].events[name] || { sockets: [] }).sockets.length);

server.on("listening", () => {
  process.stdout.write(JSON.stringify({ port: server.wss.address().port }) + "\n");
});
server.on("error", (error) => {
  process.stderr.write(String(error) + "\n");
  process.exit(1);
});
process.on("SIGTERM", () => server.close().then(() => process.exit(0)));
