#!/bin/bash
# Two "machines" (network namespaces a and b) run `app run` against one
# MongoDB, as several machines must (the embedded SQLite store is one
# machine's file); the lease holder's primary is frozen (SIGSTOP: a hung or
# cut-off machine), and the time until the other machine's primary holds
# the lease is measured. Bounded: every wait has a limit.
#
# The namespaces have only loopback, so the database must listen on a Unix
# socket: SOCK=/path/to/mongodb.sock (a mongod with
# --bind_ip /path/to/mongodb.sock, or the tests' FerretDB stand-in).
set -u
APP=${APP:-$(dirname "$0")/../bin/app}
T=/tmp/trial; rm -rf $T; mkdir -p $T/a $T/b
for n in a b; do ip netns del $n 2>/dev/null; ip netns add $n; ip netns exec $n ip link set lo up; done
SOCK=${SOCK:?set SOCK to the Unix socket of a MongoDB both machines share}
URI="mongodb://$(python3 -c "import urllib.parse;print(urllib.parse.quote('$SOCK',safe=''))")/"
common="APP_ENV=qa LOG_LEVEL=warn WHATSAPP_DRIVER=sandbox CLUSTER_WORKERS=1 APP_LISTEN=127.0.0.1:8080 APP_LEASE_TTL=${TTL:-15s} APP_HEARTBEAT_INTERVAL=1s"
ip netns exec a env $common APP_STATE_DIR=$T/a MONGO_URI="$URI" setsid $APP run >$T/a.log 2>&1 &
A=$!
for i in $(seq 100); do ip netns exec a curl -sf 127.0.0.1:8080/readyz >/dev/null && break; sleep 0.2; done
# /v1/cluster wants an admin key; both machines share the database, so one key serves both.
KEY=$(ip netns exec a env APP_ENV=qa APP_STATE_DIR=$T/a MONGO_URI="$URI" $APP keys create --name trial --scopes admin)
ip netns exec b env $common APP_STATE_DIR=$T/b MONGO_URI="$URI" setsid $APP run >$T/b.log 2>&1 &
B=$!
for i in $(seq 100); do ip netns exec b curl -sf 127.0.0.1:8080/readyz >/dev/null && break; sleep 0.2; done
holder() { ip netns exec b curl -s -H "Authorization: Bearer $KEY" 127.0.0.1:8080/v1/cluster | python3 -c 'import json,sys; v=json.load(sys.stdin); l=v.get("lease") or {}; print(l.get("pid"), l.get("epoch"), l.get("valid"))'; }
sleep 3
echo "lease: $(holder)"
HPID=$(holder | cut -d' ' -f1)
echo "primaries: $(pgrep -f 'app primary' | tr '\n' ' ') holder pid $HPID"
kill -${SIG:-STOP} $HPID
t0=$(date +%s.%N)
for i in $(seq 400); do
  cur=$(holder)
  p=$(echo $cur | cut -d' ' -f1); v=$(echo $cur | cut -d' ' -f3)
  if [ "$p" != "$HPID" ] && [ "$v" = "True" ]; then break; fi
  sleep 0.1
done
t1=$(date +%s.%N)
echo "after SIG${SIG:-STOP} of $HPID: lease $(holder) after $(python3 -c "print(round($t1-$t0,1))") s"
# Workers of both machines kept answering meanwhile?
echo "a readyz $(ip netns exec a curl -s -o /dev/null -w '%{http_code}' 127.0.0.1:8080/readyz) b readyz $(ip netns exec b curl -s -o /dev/null -w '%{http_code}' 127.0.0.1:8080/readyz)"
kill -CONT $HPID
sleep 2
echo "after SIGCONT: lease $(holder)"
grep -h "lease\|Lease" $T/a.log $T/b.log | tail -5 | cut -c1-200
kill -TERM -$A -$B 2>/dev/null; sleep 3; kill -KILL -$A -$B 2>/dev/null
for n in a b; do ip netns del $n; done
