#!/usr/bin/env node
// Serves dist/ as the server would (same paths, same Content-Security-Policy), read from disk
// on every request, and passes everything else (the API, the WebSocket) through to a running
// server: edit, `npm run build`, reload, with no rebuild of the server binary.
//
//   node scripts/dev-server.mjs [--port 5173] [--target http://127.0.0.1:8080]
//
// The page and its socket share the dev server's origin, so the server's same-origin check on
// the WebSocket passes (the Host header is passed through unchanged).
import { readFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { port: { type: "string", default: "5173" }, target: { type: "string", default: "http://127.0.0.1:8080" } },
});
const target = new URL(values.target);
const dist = fileURLToPath(new URL("../dist/", import.meta.url));

// Keep in step with server/src/http/demo.rs.
const CSP =
  "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const FILES = {
  "/": ["index.html", "text/html; charset=utf-8"],
  "/demo/app.js": ["app.js", "text/javascript; charset=utf-8"],
  "/demo/app.css": ["app.css", "text/css; charset=utf-8"],
};

const server = http.createServer(async (req, res) => {
  const path = new URL(req.url ?? "/", "http://x").pathname;
  const file = FILES[path];
  if (file && (req.method === "GET" || req.method === "HEAD")) {
    try {
      const body = await readFile(dist + file[0]);
      res.writeHead(200, {
        "content-type": file[1],
        "content-security-policy": CSP,
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
      });
      res.end(req.method === "HEAD" ? undefined : body);
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
    return;
  }
  const upstream = http.request(
    { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
    (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    },
  );
  upstream.on("error", (err) => {
    if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
    res.end(`upstream: ${err.message}`);
  });
  req.pipe(upstream);
});

// WebSocket upgrades: replay the request head to the upstream, then pipe both ways.
server.on("upgrade", (req, socket, head) => {
  const up = net.connect(Number(target.port), target.hostname, () => {
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    up.write(lines.join("\r\n") + "\r\n\r\n");
    if (head.length) up.write(head);
    up.pipe(socket);
    socket.pipe(up);
  });
  const end = () => {
    up.destroy();
    socket.destroy();
  };
  up.on("error", end);
  socket.on("error", end);
  up.on("close", end);
  socket.on("close", end);
});

server.listen(Number(values.port), "127.0.0.1", () => {
  console.log(`demo dev server on http://127.0.0.1:${server.address().port} → ${target.origin}`);
});
