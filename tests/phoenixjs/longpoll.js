// Drives the official phoenix.js LongPoll transport (npm "phoenix") against the embedded maxsdk
// server and prints one JSON object with what it observed. Usage:
//   node longpoll.js <socket endpoint, e.g. ws://127.0.0.1:PORT/socket> [<authToken endpoint>]
// Node 20 has global fetch and AbortController, which phoenix.js's Ajax uses when there is no
// XMLHttpRequest: no shim is needed.
"use strict";

const { Socket, Presence, LongPoll } = require("phoenix");

const [endpoint, authEndpoint] = process.argv.slice(2);
const STEP_TIMEOUT_MS = 8000;
const results = {};

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function makeSocket(url, params, extra = {}) {
  return new Socket(url, {
    transport: LongPoll,
    params,
    rejoinAfterMs: () => 50,
    reconnectAfterMs: () => 50,
    longpollerTimeout: 5000,
    ...extra,
  });
}

function connect(socket) {
  return withTimeout(
    new Promise((resolve, reject) => {
      socket.onOpen(() => resolve());
      socket.onError((error) => reject(new Error(`socket error: ${error}`)));
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

// Resolves with the join's response on the first ok, and again (a new promise per call) on rejoins.
function joinTracker(channel) {
  const joins = [];
  const waiters = [];
  channel.join().receive("ok", (response) => {
    joins.push({ response, joinRef: channel.joinRef() });
    while (waiters.length && waiters[0].count <= joins.length) waiters.shift().resolve(joins.slice());
  });
  return (count, what) =>
    withTimeout(
      new Promise((resolve) => {
        if (joins.length >= count) resolve(joins.slice());
        else waiters.push({ count, resolve });
      }),
      what,
    );
}

async function main() {
  const alice = makeSocket(endpoint, { user_id: "alice" });
  const bob = makeSocket(endpoint, { user_id: "bob" });
  await connect(alice);
  await connect(bob);
  results.transport = alice.transportName(alice.transport);

  // Join, reply, error reply, refused join.
  const lobbyA = alice.channel("room:lobby", {});
  const presence = new Presence(lobbyA);
  const joinedA = joinTracker(lobbyA);
  results.join = (await joinedA(1, "join"))[0].response;
  results.echo = await push(lobbyA, "echo", { hello: "world", uni: "h\u00e9llo \u2603" });
  results.echo_error = await push(lobbyA, "echo_error", { why: "because" });
  const refused = alice.channel("room:private", { password: "nope" });
  results.private_refused = await new Promise((resolve) =>
    refused.join().receive("error", (response) => resolve({ status: "error", response })),
  );
  refused.leave();

  // Presence across two long-poll sockets, then a broadcast between them.
  results.presence_alone = await presenceUntil(presence, (keys) => keys.includes("alice"));
  const lobbyB = bob.channel("room:lobby", {});
  await joinTracker(lobbyB)(1, "join b");
  results.presence_both = await presenceUntil(presence, (keys) => keys.length === 2);
  const shoutAtB = nextEvent(lobbyB, "shout");
  results.shout_reply = await push(lobbyA, "shout", { msg: "hi" });
  results.shout_received = await shoutAtB;

  // A batch: several pushes in one tick go out in one NDJSON POST.
  const batch = await Promise.all([1, 2, 3, 4, 5].map((n) => push(lobbyA, "echo", { n })));
  results.batch = batch.map((reply) => reply.response.n);

  // Client-to-server binary: a base64 line in the NDJSON body (noreply: no binary comes back).
  lobbyA.push("noreply", new Uint8Array([0, 1, 2, 250, 255]).buffer);

  // A crashed channel errors, then phoenix.js rejoins it with a new join_ref.
  const crashy = alice.channel("room:crashy", {});
  const joinedCrashy = joinTracker(crashy);
  await joinedCrashy(1, "first join");
  const errored = new Promise((resolve) => crashy.onError((reason) => resolve(reason)));
  crashy.push("crash", {});
  results.crash_error = await withTimeout(errored, "phx_error");
  results.crash_join_refs = (await joinedCrashy(2, "rejoin after crash")).map((join) => join.joinRef);
  results.after_rejoin = await push(crashy, "echo", { again: true });

  // Session loss: the server kills the session; the next poll gets 410 while holding a token,
  // phoenix.js closes with 3410, reconnects, and the channel rejoins.
  const closes = [];
  alice.onClose((event) => closes.push(event.code));
  lobbyA.push("drop_me", {});
  const rejoins = await joinedA(2, "rejoin after session loss");
  results.session_loss_close_codes = closes;
  results.session_loss_join_refs = rejoins.map((join) => join.joinRef);
  results.after_session_loss = await push(lobbyA, "echo", { back: true });

  // Bob leaves: alice's presence drops him.
  await withTimeout(new Promise((resolve) => lobbyB.leave().receive("ok", resolve)), "leave");
  results.presence_after_leave = await presenceUntil(presence, (keys) => !keys.includes("bob"));

  // authToken: phoenix.js's LongPoll sends it as X-Phoenix-AuthToken on its GETs.
  if (authEndpoint) {
    const withToken = makeSocket(authEndpoint, {}, { authToken: "s3cr3t/+token" });
    await connect(withToken);
    results.auth_token_join = (await joinTracker(withToken.channel("room:token", {}))(1, "auth join"))[0].response;
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
