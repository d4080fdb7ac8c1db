#!/bin/bash
# Node's fetch (undici: keep-alive, no retries) loads /healthz of `app run`
# with 2 workers on 6 connections while each worker in turn gets SIGTERM
# (what systemd and `app restart --rolling` send), 6 times, each once its
# successor accepts; prints what the requests got. Needs node (18 or
# later) and curl. Bounded: every loop has a count or a limit.
#   docs/keepalive-trial.sh [app binary] [port]
set -u
APP=${1:-$(dirname "$0")/../bin/app}; PORT=${2:-18431}
S=$(mktemp -d /tmp/katrial.XXXX)
cat > $S/load.mjs <<'JS'
import { existsSync } from 'node:fs';
const [url, stop] = process.argv.slice(2);
let ok = 0, failed = 0; const errs = {};
async function loop() {
  for (let i = 0; i < 200000 && !existsSync(stop); i++) {
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      if (r.status === 200) ok++; else { failed++; errs['status ' + r.status] = (errs['status ' + r.status] || 0) + 1; }
    } catch (e) {
      failed++;
      const k = (e.cause && e.cause.code) || e.message;
      errs[k] = (errs[k] || 0) + 1;
    }
  }
}
await Promise.all(Array.from({ length: 6 }, loop));
console.log(JSON.stringify({ ok, failed, errs }));
JS
env APP_ENV=qa LOG_FORMAT=json LOG_LEVEL=info MONGO_URI= CLUSTER_WORKERS=2 APP_LISTEN=127.0.0.1:$PORT \
  APP_STATE_DIR=$S WHATSAPP_DRIVER=sandbox $APP run > $S/log 2>&1 &
RUN=$!
for i in $(seq 300); do curl -sf 127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
node $S/load.mjs http://127.0.0.1:$PORT/healthz $S/stop > $S/load.out &
LOAD=$!
sleep 2
newest() { grep '"Worker is accepting connections."' $S/log | grep "\"worker\":\"$1\"" | tail -1 | sed 's/.*"pid":\([0-9]*\).*/\1/'; }
for k in 1 2 3 4 5 6; do
  w=$(( (k-1) % 2 + 1 )); pid=$(newest $w)
  kill -TERM $pid
  for i in $(seq 200); do [ "$(newest $w)" != "$pid" ] && break; sleep 0.1; done
  sleep 1.5
done
touch $S/stop; wait $LOAD
echo "6 SIGTERMs of workers under Node's fetch: $(cat $S/load.out)"
kill -INT $RUN; wait $RUN; rm -rf $S
