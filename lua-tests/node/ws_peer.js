// A WebSocket peer made with node's `ws` package, for lua-tests/ws_node_spec.lua.
//
//   node ws_peer.js server MODE [key=value ...]      listens on 127.0.0.1:0, prints the port, then events
//   node ws_peer.js client URL MODE [key=value ...]  connects to URL, prints events, exits once closed
//
// Every event is one JSON line on stdout:
//   {"ev":"open","protocol":"json"}  {"ev":"message","binary":true,"len":3}
//   {"ev":"ping","data":"hi"}  {"ev":"pong","data":"hi"}  {"ev":"close","code":1000,"reason":"bye"}
//   {"ev":"error","message":"..."}
// MODE says what the peer does on its connection (the server: on each connection):
//   echo       send every message back, text as text and binary as binary
//   close      close at once: ws.close(code, reason) with key code= (none: a close frame without code)
//   terminate  on the first message, drop the TCP connection without a close frame (ws.terminate())
//   ping       ping at once with payload data=, then echo
//   send       send one message of size= bytes ("x" repeated; binary=1 for a binary one), then echo
//   badutf8    send a text frame whose payload is not UTF-8 (ws does not check what it sends), then echo
// Options: protocols=a,b (client: offered; server: accepted, its preference first),
//          maxPayload=N (bytes; ws's default is 100 MiB), deflate=1 (server: accept
//          permessage-deflate, off by default in ws; its client always offers it).
'use strict';
const WebSocket = require('ws');

const args = process.argv.slice(2);
const role = args.shift();
const url = role === 'client' ? args.shift() : null;
const mode = args.shift() || 'echo';
const opt = {};
for (const a of args) {
  const i = a.indexOf('=');
  opt[a.slice(0, i)] = a.slice(i + 1);
}
const protocols = opt.protocols ? opt.protocols.split(',') : [];
const maxPayload = opt.maxPayload ? Number(opt.maxPayload) : undefined;

function log(ev) {
  process.stdout.write(JSON.stringify(ev) + '\n');
}

function behave(ws) {
  log({ ev: 'open', protocol: ws.protocol, extensions: ws.extensions });
  ws.on('message', (data, isBinary) => {
    log({ ev: 'message', binary: isBinary, len: data.length });
    if (mode === 'terminate') return ws.terminate();
    if (ws.readyState === WebSocket.OPEN) ws.send(data, { binary: isBinary });
  });
  ws.on('ping', (data) => log({ ev: 'ping', data: data.toString() }));
  ws.on('pong', (data) => log({ ev: 'pong', data: data.toString() }));
  ws.on('close', (code, reason) => log({ ev: 'close', code, reason: reason.toString() }));
  ws.on('error', (e) => log({ ev: 'error', message: e.message }));

  if (mode === 'close') {
    if (opt.code) ws.close(Number(opt.code), opt.reason || '');
    else ws.close();
  } else if (mode === 'ping') {
    ws.ping(opt.data || '');
  } else if (mode === 'send') {
    const size = Number(opt.size);
    ws.send(Buffer.alloc(size, 'x'), { binary: opt.binary === '1' });
  } else if (mode === 'badutf8') {
    ws.send(Buffer.from([0x68, 0x69, 0xff, 0xfe]), { binary: false });
  }
}

if (role === 'server') {
  const wss = new WebSocket.Server({
    host: '127.0.0.1',
    port: 0,
    maxPayload,
    perMessageDeflate: opt.deflate === '1' ? { threshold: 0 } : false,
    handleProtocols: (offered) => protocols.find((p) => offered.has(p)) || false,
  });
  wss.on('listening', () => log(wss.address().port));
  wss.on('connection', behave);
  setTimeout(() => process.exit(0), 60000).unref(); // the test kills us long before
} else if (role === 'client') {
  const ws = new WebSocket(url, protocols, { maxPayload, handshakeTimeout: 5000 });
  ws.on('open', () => behave(ws));
  ws.on('unexpected-response', (req, res) => {
    log({ ev: 'error', message: 'unexpected response ' + res.statusCode });
    process.exit(1);
  });
  ws.on('error', (e) => {
    if (ws.readyState === WebSocket.CONNECTING) log({ ev: 'error', message: e.message });
  });
  ws.on('close', () => setImmediate(() => process.exit(0)));
  setTimeout(() => process.exit(2), 30000).unref();
} else {
  console.error('usage: node ws_peer.js server MODE [k=v...] | client URL MODE [k=v...]');
  process.exit(2);
}
