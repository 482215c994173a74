// Drives the official phoenix.js client (npm "phoenix") against the embedded maxsdk server
// and prints one JSON object with what it observed. Usage:
//   node run.js <socket endpoint, e.g. ws://127.0.0.1:PORT/socket> [<authToken endpoint>]
"use strict";

const { Socket, Presence } = require("phoenix");
const WebSocket = require("ws");

const [endpoint, authEndpoint] = process.argv.slice(2);
const STEP_TIMEOUT_MS = 5000;
const results = {};

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function makeSocket(params, extra = {}) {
  // Node 20 has no global WebSocket: hand phoenix.js the "ws" class.
  return new Socket(endpoint, {
    transport: WebSocket,
    params,
    heartbeatIntervalMs: 200,
    rejoinAfterMs: () => 50,
    ...extra,
  });
}

function connect(socket) {
  return withTimeout(
    new Promise((resolve, reject) => {
      socket.onOpen(() => resolve());
      socket.onError((error) => reject(new Error(`socket error: ${error && error.message}`)));
      socket.connect();
    }),
    "connect",
  );
}

function push(channel, event, payload) {
  return withTimeout(
    new Promise((resolve) => {
      channel
        .push(event, payload)
        .receive("ok", (response) => resolve({ status: "ok", response }))
        .receive("error", (response) => resolve({ status: "error", response }))
        .receive("timeout", () => resolve({ status: "timeout" }));
    }),
    `push ${event}`,
  );
}

function join(channel) {
  return withTimeout(
    new Promise((resolve) => {
      channel
        .join()
        .receive("ok", (response) => resolve({ status: "ok", response, joinRef: channel.joinRef() }))
        .receive("error", (response) => resolve({ status: "error", response }))
        .receive("timeout", () => resolve({ status: "timeout" }));
    }),
    `join ${channel.topic}`,
  );
}

function nextEvent(channel, event) {
  return withTimeout(
    new Promise((resolve) => {
      const ref = channel.on(event, (payload) => {
        channel.off(event, ref);
        resolve(payload);
      });
    }),
    `event ${event}`,
  );
}

function presenceUntil(presence, predicate) {
  return withTimeout(
    new Promise((resolve) => {
      const check = () => {
        const keys = presence.list((key) => key).sort();
        if (predicate(keys)) resolve(keys);
      };
      presence.onSync(check);
      check();
    }),
    "presence sync",
  );
}

const bytes = (buffer) => Array.from(new Uint8Array(buffer));

async function main() {
  const alice = makeSocket({ user_id: "alice" });
  const bob = makeSocket({ user_id: "bob" });
  await connect(alice);
  await connect(bob);

  // Join, reply, error reply.
  const lobbyA = alice.channel("room:lobby", {});
  const presence = new Presence(lobbyA);
  results.join = await join(lobbyA);
  results.echo = await push(lobbyA, "echo", { hello: "world", uni: "h\u00e9llo \u2603" });
  results.echo_error = await push(lobbyA, "echo_error", { why: "because" });
  results.unknown = await push(lobbyA, "no_such_event", {});
  // Refused joins: leave at once, or phoenix.js would retry them forever.
  const refused = alice.channel("room:private", { password: "nope" });
  results.private_refused = await join(refused);
  refused.leave();
  const unrouted = alice.channel("nope:topic", {});
  results.unmatched = await join(unrouted);
  unrouted.leave();

  // Presence sync across two sockets, then a broadcast between them.
  results.presence_alone = await presenceUntil(presence, (keys) => keys.includes("alice"));
  const lobbyB = bob.channel("room:lobby", {});
  results.join_b = await join(lobbyB);
  results.presence_both = await presenceUntil(presence, (keys) => keys.length === 2);
  const shoutAtB = nextEvent(lobbyB, "shout");
  results.shout_reply = await push(lobbyA, "shout", { msg: "hi" });
  results.shout_received = await shoutAtB;

  // Binary: a server push (kind 0), a binary reply (kind 1), a binary broadcast (kind 2).
  const bin = nextEvent(lobbyA, "bin");
  results.push_binary_reply = await push(lobbyA, "push_binary", {});
  results.bin = bytes(await bin);
  const echoed = await push(lobbyA, "binary_echo", new Uint8Array([0, 1, 2, 250, 255]).buffer);
  results.binary_echo = { status: echoed.status, response: bytes(echoed.response) };
  const binShout = nextEvent(lobbyB, "shout");
  await push(lobbyA, "shout", new Uint8Array([0, 98, 105, 110, 255]).buffer);
  results.binary_shout = bytes(await binShout);

  // A crashed channel errors, then phoenix.js rejoins it with a new join_ref.
  const crashy = alice.channel("room:crashy", {});
  const joinRefs = [];
  const joined = [];
  const joinedTwice = [new Promise((resolve) => joined.push(resolve)), new Promise((resolve) => joined.push(resolve))];
  crashy.join().receive("ok", () => {
    joinRefs.push(crashy.joinRef());
    if (joinRefs.length <= 2) joined[joinRefs.length - 1]();
  });
  const errored = new Promise((resolve) => crashy.onError((reason) => resolve(reason)));
  await withTimeout(joinedTwice[0], "first join");
  crashy.push("crash", {});
  results.crash_error = await withTimeout(errored, "phx_error");
  await withTimeout(joinedTwice[1], "rejoin after crash");
  results.crash_join_refs = joinRefs;
  results.after_rejoin = await push(crashy, "echo", { again: true });

  // Heartbeats are answered (ping uses a heartbeat with its own ref).
  results.ping_ms = await withTimeout(new Promise((resolve) => alice.ping(resolve)), "ping");

  // Bob leaves: alice's presence drops him.
  await withTimeout(new Promise((resolve) => lobbyB.leave().receive("ok", resolve)), "leave");
  results.presence_after_leave = await presenceUntil(presence, (keys) => keys.length === 1);

  // echo:* channel.
  const echo = alice.channel("echo:demo", {});
  results.echo_join = await join(echo);
  results.echo_channel = await push(echo, "anything", { n: 1 });

  // authToken over Sec-WebSocket-Protocol (Phoenix 1.8).
  if (authEndpoint) {
    const withToken = new Socket(authEndpoint, { transport: WebSocket, authToken: "s3cr3t/+token" });
    await connect(withToken);
    results.auth_token_protocol = withToken.conn.protocol;
    results.auth_token_join = await join(withToken.channel("room:token", {}));
    withToken.disconnect();
  }

  alice.disconnect();
  bob.disconnect();
}

main()
  .then(() => {
    process.stdout.write(JSON.stringify({ ok: true, results }) + "\n");
    process.exit(0);
  })
  .catch((error) => {
    process.stdout.write(JSON.stringify({ ok: false, error: String(error && error.stack), results }) + "\n");
    process.exit(1);
  });
