// A hapi server with the nes WebSocket plugin (npm @hapi/hapi + @hapi/nes) for the interop tests.
// Usage: node nes_server.js [port] [heartbeat interval ms] [heartbeat timeout ms]
// Prints {"port": N} on stdout once listening, on 127.0.0.1 only.
//
// nes speaks JSON objects over one WebSocket: a client greets with "hello", then
// subscribes to paths ("sub"/"unsub"), gets {"type": "pub", "path", "message"} updates,
// sends "message"/"request" messages answered by id, and must answer the server's
// {"type": "ping"} heartbeats. Below: the subscriptions, an onMessage handler (how a nes
// application lets clients publish), and HTTP routes the tests use to drive the server.
"use strict";
const Boom = require("@hapi/boom");
const Hapi = require("@hapi/hapi");
const Nes = require("@hapi/nes");

const port = Number(process.argv[2] || 0);
const interval = Number(process.argv[3] || 15000);
const timeout = Number(process.argv[4] || 5000);

const stats = { connections: 0, disconnections: 0 };

async function main() {
  const server = Hapi.server({ host: "127.0.0.1", port });
  await server.register({
    plugin: Nes,
    options: {
      heartbeat: { interval, timeout },
      onConnection: () => {
        stats.connections += 1;
      },
      onDisconnection: () => {
        stats.disconnections += 1;
      },
      onMessage: async (socket, message) => {
        if (message && message.refuse) {
          throw Boom.badRequest("refused on purpose");
        }
        if (message && typeof message.publish === "string") {
          server.publish(message.publish, message.message);
          return { published: message.publish };
        }
        return { echo: message };
      },
    },
  });

  server.subscription("/items/{id}");

  // A route whose handler returns a broken JSON string: nes splices it into its reply as is.
  server.route({ method: "GET", path: "/broken", handler: (request, h) => h.response('{"unterminated').type("application/json") });
  server.route({ method: "GET", path: "/time", handler: () => ({ now: Date.now() }) });

  // Test control (plain HTTP on the same port).
  server.route({
    method: "POST",
    path: "/control/publish",
    handler: (request) => {
      server.publish(request.payload.path, request.payload.message);
      return { ok: true };
    },
  });
  server.route({
    method: "POST",
    path: "/control/broadcast",
    handler: (request) => {
      server.broadcast(request.payload.message);
      return { ok: true };
    },
  });
  server.route({
    method: "POST",
    path: "/control/revoke",
    handler: async (request) => {
      const sockets = [];
      server.eachSocket((socket) => {
        sockets.push(socket);
      }, { subscription: request.payload.path });
      await Promise.all(sockets.map((socket) => socket.revoke(request.payload.path, request.payload.message ?? null)));
      return { revoked: sockets.length };
    },
  });
  server.route({
    method: "GET",
    path: "/control/stats",
    handler: (request) => {
      const subscribers = {};
      for (const path of [].concat(request.query.path || [])) {
        let count = 0;
        server.eachSocket(() => {
          count += 1;
        }, { subscription: path });
        subscribers[path] = count;
      }
      return { ...stats, subscribers };
    },
  });

  await server.start();
  process.stdout.write(JSON.stringify({ port: server.info.port }) + "\n");
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error) + "\n");
  process.exit(1);
});
