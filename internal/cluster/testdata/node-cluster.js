// A hello-world server in Node.js's cluster mode, as the original system
// ran: a primary process forks one worker per CPU (here NODE_WORKERS), the
// workers share the listening socket and answer every request.
const cluster = require('node:cluster');
const http = require('node:http');

const port = Number(process.env.PORT);
const workers = Number(process.env.NODE_WORKERS || 2);

if (cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('hello, world\n');
  }).listen(port, '127.0.0.1');
}
