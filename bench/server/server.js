// A small, fast Phoenix Channels server for the benchmarks (never the bottleneck).
//
// It speaks just enough of the protocol (reference/phoenix-protocol.md §2-§4) for the
// workloads: V2 arrays (vsn=2.0.0) and V1 objects (vsn=1.0.0 or no vsn), joins on any
// topic, heartbeat replies, leave, and these channel events:
//
//   echo    {...}                     -> reply ok with the payload
//   flood   {"n":N,"size":S[,"shape"]} -> N identical broadcast frames ("flood_msg") to
//                                         this connection, then the reply {"sent":N}
//   fanout  {"n":N,"size":S[,"shape"]} -> N broadcast frames to every connection joined to
//                                         the topic, then the reply {"sent":N,"clients":C}
//   publish {"topic":T,"n":N,"size":S[,"shape"][,"push_end":true]}
//                                      -> like fanout, to the subscribers of topic T (for
//                                         clients that cannot push); with push_end, each
//                                         subscriber then gets a "flood_end" channel push
//                                         (join_ref set, unlike the broadcasts)
//   anything else                      -> reply error {"reason":"unknown event"}
//
// Broadcast frames are serialized and framed once (a text frame of exactly S bytes of
// JSON when S is larger than the envelope), concatenated into ~64 KiB chunks and written
// straight to the TCP socket as fast as it drains, so the server spends a few
// microseconds per chunk, not per message. shape "supabase" wraps them the way the
// Supabase Realtime server does ({"type":"broadcast","event":...,"payload":...} under
// the event "broadcast"), which is the only broadcast shape the `realtime` client accepts.
//
// Usage: node server.js [--port P]   (prints {"port": P} on stdout once listening;
// exits when stdin closes, so a parent process never leaves it behind).
"use strict";

const http = require("http");
const { WebSocketServer } = require("ws");

const CHUNK_BYTES = 64 * 1024;

function argValue(name, fallback) {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : fallback;
}

// -- codecs (reference §2.2, §2.3) -------------------------------------------------------

const V2 = {
  decode(text) {
    const [joinRef, ref, topic, event, payload] = JSON.parse(text);
    return { joinRef, ref, topic, event, payload };
  },
  encode(joinRef, ref, topic, event, payload) {
    return JSON.stringify([joinRef, ref, topic, event, payload]);
  },
};

const V1 = {
  decode(text) {
    const m = JSON.parse(text);
    return { joinRef: m.join_ref ?? null, ref: m.ref ?? null, topic: m.topic, event: m.event, payload: m.payload };
  },
  // Server -> client V1 objects never carry join_ref (reference §2.2).
  encode(_joinRef, ref, topic, event, payload) {
    return JSON.stringify({ topic, event, payload, ref });
  },
};

// -- prebuilt broadcast frames ----------------------------------------------------------

function wsTextFrame(text) {
  const body = Buffer.from(text, "utf8");
  let header;
  if (body.length < 126) {
    header = Buffer.from([0x81, body.length]);
  } else if (body.length < 65536) {
    header = Buffer.alloc(4);
    header[0] = 0x81;
    header[1] = 126;
    header.writeUInt16BE(body.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x81;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(body.length), 2);
  }
  return Buffer.concat([header, body]);
}

function broadcastText(codec, topic, size, shape) {
  const build = (data) =>
    shape === "supabase"
      ? codec.encode(null, null, topic, "broadcast", { type: "broadcast", event: "flood_msg", payload: { data } })
      : codec.encode(null, null, topic, "flood_msg", { data });
  const overhead = Buffer.byteLength(build(""));
  return build("x".repeat(Math.max(0, size - overhead)));
}

const frameCache = new Map();

function framesFor(codec, topic, size, shape) {
  const key = `${codec === V2 ? 2 : 1}|${topic}|${size}|${shape}`;
  let entry = frameCache.get(key);
  if (entry === undefined) {
    const frame = wsTextFrame(broadcastText(codec, topic, size, shape));
    const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / frame.length));
    entry = { frame, perChunk, chunk: Buffer.concat(new Array(perChunk).fill(frame)) };
    frameCache.set(key, entry);
  }
  return entry;
}

function waitDrain(socket) {
  return new Promise((resolve) => {
    const done = () => {
      socket.off("drain", done);
      socket.off("close", done);
      resolve();
    };
    socket.on("drain", done);
    socket.on("close", done);
  });
}

// Write n copies of the frame in whole chunks, waiting for the socket to drain.
async function writeFrames(connection, topic, size, shape, n) {
  const { frame, perChunk, chunk } = framesFor(connection.codec, topic, size, shape);
  const socket = connection.ws._socket; // frames are prebuilt: bypass ws's per-message sender
  let remaining = n;
  while (remaining > 0 && !socket.destroyed) {
    let buffer = chunk;
    if (remaining >= perChunk) {
      remaining -= perChunk;
    } else {
      buffer = Buffer.concat(new Array(remaining).fill(frame));
      remaining = 0;
    }
    if (!socket.write(buffer)) await waitDrain(socket);
  }
}

// -- connections ----------------------------------------------------------------------------

const subscribers = new Map(); // topic -> Set<Connection>

class Connection {
  constructor(ws, codec) {
    this.ws = ws;
    this.codec = codec;
    this.joined = new Map(); // topic -> join_ref
    ws.on("message", (data, isBinary) => {
      if (!isBinary) this.receive(data.toString());
    });
    ws.on("close", () => this.closed());
    ws.on("error", () => {});
  }

  send(joinRef, ref, topic, event, payload) {
    if (this.ws.readyState === 1) this.ws.send(this.codec.encode(joinRef, ref, topic, event, payload));
  }

  reply(message, status, response) {
    this.send(message.joinRef, message.ref, message.topic, "phx_reply", { status, response });
  }

  receive(text) {
    let message;
    try {
      message = this.codec.decode(text);
    } catch (error) {
      this.ws.close(1011, "malformed frame");
      return;
    }
    const { topic, event } = message;
    if (topic === "phoenix" && event === "heartbeat") return this.reply(message, "ok", {});
    if (event === "phx_join") return this.join(message);
    if (!this.joined.has(topic)) {
      return this.send(null, message.ref, topic, "phx_reply", {
        status: "error",
        response: { reason: "unmatched topic" },
      });
    }
    if (event === "phx_leave") return this.leave(message);
    if (event === "echo") return this.reply(message, "ok", message.payload);
    if (event === "flood") return this.flood(message);
    if (event === "fanout") return this.fanout(message);
    if (event === "publish") return this.publish(message);
    return this.reply(message, "error", { reason: "unknown event", event });
  }

  join(message) {
    const { topic } = message;
    this.joined.set(topic, message.joinRef ?? message.ref);
    let set = subscribers.get(topic);
    if (set === undefined) subscribers.set(topic, (set = new Set()));
    set.add(this);
    this.reply(message, "ok", {});
  }

  leave(message) {
    const { topic } = message;
    const joinRef = this.joined.get(topic);
    this.unsubscribe(topic);
    this.reply(message, "ok", {});
    this.send(joinRef, joinRef, topic, "phx_close", {});
  }

  async flood(message) {
    const { n, size, shape } = floodParams(message.payload);
    await writeFrames(this, message.topic, size, shape, n);
    this.reply(message, "ok", { sent: n });
  }

  async fanout(message) {
    const { n, size, shape } = floodParams(message.payload);
    const targets = [...(subscribers.get(message.topic) || [])];
    await Promise.all(targets.map((target) => writeFrames(target, message.topic, size, shape, n)));
    this.reply(message, "ok", { sent: n, clients: targets.length });
  }

  async publish(message) {
    const { n, size, shape } = floodParams(message.payload);
    const topic = String(message.payload.topic);
    const targets = [...(subscribers.get(topic) || [])];
    await Promise.all(
      targets.map(async (target) => {
        await writeFrames(target, topic, size, shape, n);
        if (message.payload.push_end) target.send(target.joined.get(topic) ?? null, null, topic, "flood_end", {});
      }),
    );
    this.reply(message, "ok", { sent: n, clients: targets.length });
  }

  unsubscribe(topic) {
    this.joined.delete(topic);
    const set = subscribers.get(topic);
    if (set !== undefined) {
      set.delete(this);
      if (set.size === 0) subscribers.delete(topic);
    }
  }

  closed() {
    for (const topic of [...this.joined.keys()]) this.unsubscribe(topic);
  }
}

function floodParams(payload) {
  const p = payload && typeof payload === "object" ? payload : {};
  return { n: Math.max(0, p.n | 0), size: Math.max(0, p.size | 0), shape: p.shape === "supabase" ? "supabase" : "plain" };
}

// -- server -----------------------------------------------------------------------------------

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
const server = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});

server.on("upgrade", (req, socket, head) => {
  const url = new URL(req.url, "http://localhost");
  const vsn = url.searchParams.get("vsn") || "1.0.0";
  if (!url.pathname.endsWith("/websocket") || (vsn !== "1.0.0" && vsn !== "2.0.0")) {
    socket.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => new Connection(ws, vsn === "2.0.0" ? V2 : V1));
});

server.listen(Number(argValue("--port", "0")), "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n");
});

// The parent owns our lifetime: stop when it closes our stdin (or dies).
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
