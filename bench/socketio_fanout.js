// The Socket.IO peer of crates/cadre-bench/src/bin/realtime_fanout.rs: a
// server that puts each connection in the room its query names and
// broadcasts whatever a publisher sends ("publish") to the "org" room as
// "event". WebSocket transport only, no compression, as cadre's /ws.
// Usage: node bench/socketio_fanout.js PORT   (NODE_PATH must find socket.io)
const { Server } = require("socket.io");

const port = Number(process.argv[2]);
const io = new Server(port, {
  transports: ["websocket"],
  perMessageDeflate: false,
  maxHttpBufferSize: 1 << 20,
});
io.on("connection", (socket) => {
  socket.join(socket.handshake.query.room || "idle");
  socket.on("publish", (msg) => io.to("org").emit("event", msg));
});
console.log(`socket.io listening on ${port}`);
