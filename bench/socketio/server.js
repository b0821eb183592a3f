// Socket.IO server that the hub benchmark runs beside the Dangwu hub.
//
// It serves Socket.IO with default options and mirrors the hub workload:
// a client emits "subscribe" with a topic name and is put in that room,
// and a loopback-only trigger socket broadcasts events to a room on
// request. Events carry the same fields as the hub's `event` message.
//
// Usage: node server.js --port PORT --trigger-port PORT
//
// Trigger protocol, one line per request over TCP:
//   publish TOPIC ROUND COUNT   ->  ok LAST_SEQ
// ROUND is copied into every event's data so that clients can tell the
// rounds of the fan-out measurement apart.

"use strict";

const http = require("node:http");
const net = require("node:net");
const { Server } = require("socket.io");

function parseArgs(argv) {
  const options = { port: 0, triggerPort: 0 };
  for (let i = 0; i < argv.length; i += 2) {
    const value = Number(argv[i + 1]);
    if (argv[i] === "--port") {
      options.port = value;
    } else if (argv[i] === "--trigger-port") {
      options.triggerPort = value;
    } else {
      throw new Error(`unknown option ${argv[i]}; expected --port or --trigger-port`);
    }
  }
  if (!options.port || !options.triggerPort) {
    throw new Error("missing option: both --port and --trigger-port are required");
  }
  return options;
}

const options = parseArgs(process.argv.slice(2));
const httpServer = http.createServer();
const io = new Server(httpServer);
const sequences = new Map();

io.on("connection", (socket) => {
  socket.on("subscribe", (topic) => {
    if (typeof topic !== "string") {
      socket.emit("error_message", { code: "invalid_field", message: "topic must be a string" });
      return;
    }
    socket.join(topic);
    socket.emit("subscribed", { topic, seq: sequences.get(topic) ?? 0 });
  });
});

function publish(topic, round, count) {
  let seq = sequences.get(topic) ?? 0;
  for (let index = 0; index < count; index += 1) {
    seq += 1;
    io.to(topic).emit("event", {
      topic,
      seq,
      kind: "bench.tick",
      data: { round, index, title: "支部学习通知" },
      at: Date.now(),
    });
  }
  sequences.set(topic, seq);
  return seq;
}

const trigger = net.createServer((connection) => {
  let buffered = "";
  connection.setEncoding("utf8");
  connection.setNoDelay(true);
  connection.on("data", (chunk) => {
    buffered += chunk;
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      const [command, topic, round, count] = line.split(" ");
      if (command !== "publish" || !topic || !Number.isInteger(Number(count))) {
        connection.write(`error invalid request ${JSON.stringify(line)}\n`);
        continue;
      }
      const seq = publish(topic, Number(round), Number(count));
      connection.write(`ok ${seq}\n`);
    }
  });
  connection.on("error", (error) => console.error(`trigger connection failed: ${error.message}`));
});

httpServer.listen(options.port, "127.0.0.1", () => {
  trigger.listen(options.triggerPort, "127.0.0.1", () => {
    console.log(`socket.io listening on 127.0.0.1:${options.port}, trigger on 127.0.0.1:${options.triggerPort}`);
  });
});
