#!/usr/bin/env bash
# Benchmark our server and Janus (EchoTest, VideoRoom) with the same clients (cmd/kms-bench), each server in a
# network namespace of a veth pair pinned to CPU 0, the load tool in the other namespace pinned to CPU 1.
#
#   bench/run.sh                 short run (≈ 3 min): table on stdout, results in bench/results/last/
#   bench/run.sh --full          full ramp (≈ 20-40 min), results in bench/results/full/
#   bench/run.sh --profile       our server built with -tags benchprof (net/http/pprof on :6060): a CPU
#                                and heap profile of each window of ours is saved next to the results
#   bench/run.sh --targets       issue 11's targets (≈ 13 min): both servers, loopback N = 20/100/200/300,
#                                one2many 100/300 with joins, group, idle; syscalls per packet; profiles
#                                of ours at one2many 300; results and targets.md in bench/results/targets/
#   bench/run.sh --server-rev REV   our server built from commit REV (git archive) instead of the work tree
#   bench/run.sh --server-bin FILE  our server: a binary built beforehand
#   bench/run.sh [--full] -- ARGS   extra kms-bench flags (go run ./cmd/kms-bench -h)
#   bench/run.sh --soak          the soak (make soak): 50 sessions for SOAK_DURATION (default 10m) with
#                                netem loss, jitter and reordering both ways; our server only; results
#                                in bench/results/soak/
#   bench/run.sh --router        loopback and one-to-many straight to a cluster node, then through a router
#                                (redis-server, node and router in the servers' namespace): processOffer
#                                round trips, the router's CPU per request and I/O against the link's
#                                bytes; results in bench/results/router/
#
# Needs root (ip netns, tc), taskset, janus (Debian package; not for --soak or --router), redis-server
# (--router only) and, if bench/media is
# missing, ffmpeg.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

mode=short
profile=
rev=
bin=
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --full) mode=full; shift ;;
    --targets) mode=targets; profile=1; shift ;;
    --soak) mode=soak; shift ;;
    --router) mode=router; shift ;;
    --profile) profile=1; shift ;;
    --server-rev) rev=$2; shift 2 ;;
    --server-bin) bin=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) extra+=("$1"); shift ;;
  esac
done

[ "$(id -u)" = 0 ] || { echo "bench/run.sh: needs root for network namespaces" >&2; exit 1; }
needs="ip taskset janus"; [ $mode = soak ] && needs="ip tc taskset"; [ $mode = router ] && needs="ip taskset redis-server"
for c in $needs; do command -v $c >/dev/null || { echo "bench/run.sh: $c not installed (apt-get install iproute2 util-linux janus)" >&2; exit 1; }; done
ncpu=$(nproc)
SRV_CPU=0; CLI_CPU=1
# Both servers and the tool run at a higher priority than the builds that may share the machine: nice
# alone does nothing across sessions (the kernel's autogroups share the CPU between sessions first), so
# each runs in a session of its own (setsid) whose autogroup gets the same nice.
NICE=${BENCH_NICE:--20}
prio() { # once the process has its own session (setsid runs in the child, a moment later)
  local mine; mine=$(cut -d' ' -f1 /proc/$$/autogroup)
  for _ in $(seq 50); do
    [ "$(cut -d' ' -f1 "/proc/$1/autogroup" 2>/dev/null)" != "$mine" ] && break
    sleep 0.02
  done
  echo "$NICE" >"/proc/$1/autogroup" 2>/dev/null || echo "bench/run.sh: could not set the priority of $1's autogroup" >&2
}
[ "$ncpu" -ge 2 ] || { echo "bench/run.sh: needs 2 cores" >&2; exit 1; }

# The clip: real VP8 at ≈ 500 kb/s, 30 fps, a keyframe every second (issue 11), and Opus in 20 ms pages, made once.
if [ ! -s bench/media/clip.ivf ] || [ ! -s bench/media/clip.ogg ]; then
  mkdir -p bench/media
  ffmpeg -loglevel error -y -f lavfi -i testsrc2=size=640x360:rate=30 -t 6 -c:v libvpx -deadline good -cpu-used 4 \
    -b:v 500k -minrate 450k -maxrate 550k -g 30 -auto-alt-ref 0 -lag-in-frames 0 -error-resilient 1 bench/media/clip.ivf
  ffmpeg -loglevel error -y -f lavfi -i sine=frequency=440:sample_rate=48000 -t 6 -c:a libopus -b:a 32k -ac 2 \
    -page_duration 20000 bench/media/clip.ogg
fi

work=$(mktemp -d /tmp/kms-bench.XXXXXX)
tag=kb$$
SRV_IP=10.200.77.1; CLI_IP=10.200.77.2
if [ $mode = soak ]; then
  tag=soak$$
  SRV_IP=10.200.78.1; CLI_IP=10.200.78.2
elif [ $mode = router ]; then
  tag=rb$$
  SRV_IP=10.200.79.1; CLI_IP=10.200.79.2
fi
SRV=${tag}s; CLI=${tag}c
SRV_IF=${tag}s0; CLI_IF=${tag}c0
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$SRV" 2>/dev/null || true
  ip netns del "$CLI" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building..."
src=.
if [ -n "$rev" ]; then
  src="$work/src"; mkdir -p "$src"
  git archive "$rev" | tar -x -C "$src"
  cp cmd/kurento-media-server/pprof_benchprof.go "$src/cmd/kurento-media-server/"
fi
server_desc="work tree"; [ -n "$rev" ] && server_desc="commit $(git rev-parse --short "$rev")"
if [ -n "$bin" ]; then
  server_desc="$bin, built $(date -u -r "$bin" +%FT%TZ)"
  cp "$bin" "$work/kurento-media-server"
elif [ -n "$profile" ]; then
  (cd "$src" && go build -tags benchprof -o "$work/kurento-media-server" ./cmd/kurento-media-server)
else
  (cd "$src" && go build -o "$work/kurento-media-server" ./cmd/kurento-media-server)
fi
go build -o "$work/kms-bench" ./cmd/kms-bench

ip netns add "$SRV"; ip netns add "$CLI"
ip link add "$SRV_IF" type veth peer name "$CLI_IF"
ip link set "$SRV_IF" netns "$SRV"; ip link set "$CLI_IF" netns "$CLI"
ip -n "$SRV" addr add $SRV_IP/24 dev "$SRV_IF"; ip -n "$CLI" addr add $CLI_IP/24 dev "$CLI_IF"
for ns in "$SRV" "$CLI"; do ip -n "$ns" link set lo up; done
ip -n "$SRV" link set "$SRV_IF" up; ip -n "$CLI" link set "$CLI_IF" up
impair=
if [ $mode = soak ]; then
  # Each direction: 5 % loss, 30 ms ± 30 ms delay (jitter reorders packets) and 5 % sent at once
  # (reordering again), as a poor Wi-Fi or mobile link. A kernel without sch_netem gets the same
  # impairment from the clients' own sockets, both ways (kms-bench -impair).
  link="netem delay 30ms 30ms loss 5% reorder 5% 50% on both ends of the veth"
  # IPv4 only, as the clients: a link-local IPv6 address that becomes usable a moment after the link
  # comes up would give the endpoints made later one more socket each, which looks like a leak.
  for ns in "$SRV" "$CLI"; do ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; done
  for ns in "$SRV:$SRV_IF" "$CLI:$CLI_IF"; do
    if ! tc -n "${ns%%:*}" qdisc add dev "${ns##*:}" root netem delay 30ms 30ms loss 5% reorder 5% 50% 2>/dev/null; then
      impair="-impair loss=5%,delay=30ms,jitter=30ms,reorder=5%"
      link="no netem in this kernel: kms-bench $impair on the clients' sockets, both ways"
      tc -n "$SRV" qdisc del dev "$SRV_IF" root 2>/dev/null || true
      break
    fi
  done
  echo "link: $link"
fi

# Our server: candidates on the veth only, quiet logs.
mkdir -p "$work/kms"
cat > "$work/kms/kurento.conf.json" <<JSON
{ "mediaServer": { "net": { "websocket": { "port": 8888, "path": "kurento" } } } }
JSON
# The soak reads the server's live heap from its GC trace (GODEBUG=gctrace=1 writes it on stderr).
errlog="$work/kms.log"; gcdebug=
[ $mode = soak ] && { errlog="$work/kms.gc"; gcdebug=gctrace=1; }
KMS_BENCH_PPROF=$SRV_IP:6060 KMS_NETWORK_INTERFACES=$SRV_IF GST_DEBUG=1 GODEBUG=$gcdebug setsid ip netns exec "$SRV" nice -n $NICE taskset -c $SRV_CPU \
  "$work/kurento-media-server" -f "$work/kms/kurento.conf.json" >"$work/kms.log" 2>>"$errlog" &
kms_pid=$!; pids+=($kms_pid); prio $kms_pid

# tool_done LOG...: waits for kms-bench ($tool_pid) and exits with its status, or 1 if a server's log has a panic.
tool_done() {
  local status=0
  wait $tool_pid || status=$?
  if grep -qiE "panic|fatal error" "$@"; then
    echo "a server logged a panic:"; grep -ihE -A20 "panic|fatal error" "$@" | head -40; status=1
  fi
  exit $status
}
ready() { ip netns exec "$CLI" bash -c "exec 3<>/dev/tcp/$SRV_IP/$1" 2>/dev/null; }
if [ $mode = soak ]; then
  for i in $(seq 100); do ready 8888 && break; sleep 0.1; done
  ready 8888 || { echo "our server did not start:"; tail -20 "$work/kms.log"; exit 1; }
  setsid ip netns exec "$CLI" nice -n $NICE taskset -c $CLI_CPU "$work/kms-bench" -kms-url ws://$SRV_IP:8888/kurento \
    -kms-pid $kms_pid -client-ip $CLI_IP -soak "${SOAK_DURATION:-10m}" -server-gctrace "$work/kms.gc" -label soak $impair \
    -out bench/results/soak -note "our server: $server_desc; pinned to CPU $SRV_CPU, kms-bench to CPU $CLI_CPU, veth between two namespaces; link: $link; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" \
    "${extra[@]}" &
  tool_pid=$!; pids+=($tool_pid); prio $tool_pid
  tool_done "$work/kms.log" "$work/kms.gc"
fi

if [ $mode = router ]; then
  # The server above stays unused: a cluster node and a router of the same binary, with Redis, all in the
  # servers' namespace on CPU SRV_CPU. The node advertises its loopback address, so the router reaches it
  # there, and the veth to the clients carries the media and the clients' signalling only.
  kill $kms_pid; wait $kms_pid 2>/dev/null || true
  setsid ip netns exec "$SRV" taskset -c $SRV_CPU redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no \
    >"$work/redis.log" 2>&1 &
  pids+=($!)
  store=redis://127.0.0.1:6379/0
  sed 's/8888/8890/' "$work/kms/kurento.conf.json" >"$work/kms/node.conf.json"
  KMS_CLUSTER_STORE=$store KMS_CLUSTER_ADVERTISE=ws://127.0.0.1:8890/kurento KMS_NETWORK_INTERFACES=$SRV_IF GST_DEBUG=1 \
    setsid ip netns exec "$SRV" nice -n $NICE taskset -c $SRV_CPU "$work/kurento-media-server" -f "$work/kms/node.conf.json" \
    >"$work/kms.log" 2>&1 &
  node_pid=$!; pids+=($node_pid); prio $node_pid
  for i in $(seq 100); do ready 8890 && break; sleep 0.1; done
  setsid ip netns exec "$SRV" nice -n $NICE taskset -c $SRV_CPU "$work/kurento-media-server" --router --cluster-store $store \
    -f "$work/kms/kurento.conf.json" >"$work/router.log" 2>&1 &
  router_pid=$!; pids+=($router_pid); prio $router_pid
  for i in $(seq 100); do ready 8888 && break; sleep 0.1; done
  ready 8890 || { echo "the node did not start:"; tail -20 "$work/kms.log"; exit 1; }
  ready 8888 || { echo "the router did not start:"; tail -20 "$work/router.log"; exit 1; }
  for i in $(seq 100); do
    [ -n "$(ip netns exec "$SRV" redis-cli -p 6379 --scan --pattern 'kms:node:*')" ] && break; sleep 0.1
  done
  setsid ip netns exec "$CLI" nice -n $NICE taskset -c $CLI_CPU "$work/kms-bench" -kms-url ws://$SRV_IP:8890/kurento -kms-pid $node_pid \
    -router-url ws://$SRV_IP:8888/kurento -router-pid $router_pid -client-ip $CLI_IP -idle 0 -direct 0 \
    -scenarios loopback,one2many -loopback-n 20 -one2many-n 50 -label router -out bench/results/router \
    -note "our server: $server_desc; node, router and redis-server pinned to CPU $SRV_CPU, kms-bench to CPU $CLI_CPU, veth between two namespaces; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" \
    "${extra[@]}" &
  tool_pid=$!; pids+=($tool_pid); prio $tool_pid
  tool_done "$work/kms.log" "$work/router.log"
fi

# Janus: a copy of the templates in bench/janus.
mkdir -p "$work/janus"
for f in bench/janus/*.jcfg; do
  sed -e "s|@DIR@|$work/janus|g" -e "s|@IP@|$SRV_IP|g" -e "s|@IFACE@|$SRV_IF|g" "$f" >"$work/janus/$(basename "$f")"
done
setsid ip netns exec "$SRV" nice -n $NICE taskset -c $SRV_CPU janus -C "$work/janus/janus.jcfg" -F "$work/janus" >"$work/janus.log" 2>&1 &
janus_pid=$!; pids+=($janus_pid); prio $janus_pid

for i in $(seq 100); do ready 8888 && ready 8088 && break; sleep 0.1; done
ready 8888 || { echo "our server did not start:"; tail -20 "$work/kms.log"; exit 1; }
ready 8088 || { echo "janus did not start:"; tail -20 "$work/janus.log"; exit 1; }

args=(-kms-url ws://$SRV_IP:8888/kurento -kms-pid $kms_pid -janus-url http://$SRV_IP:8088/janus -janus-pid $janus_pid
      -client-ip $CLI_IP ${profile:+-pprof http://$SRV_IP:6060} -note "our server: $server_desc${profile:+ with pprof}; servers pinned to CPU $SRV_CPU, kms-bench to CPU $CLI_CPU, veth between two namespaces; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)")
if [ $mode = full ]; then
  args+=(-ramp -window 15s -idle 500 -label full -out bench/results/full)
elif [ $mode = targets ]; then
  # Allocations per forwarded packet come from a Go benchmark of the forwarding path (ALLOCS_BENCH in
  # ALLOCS_PKGS); everything else from this run. The figures before are those of bench/results/full.
  allocs="go test ${ALLOCS_PKGS:=./endpoints/webrtc} -run '^\$' -bench '${ALLOCS_BENCH:=ForwardTo100Viewers}' -benchmem -benchtime ${ALLOCS_BENCHTIME:=200000x}"
  echo "allocations: $allocs"
  go test $ALLOCS_PKGS -run '^$' -bench "$ALLOCS_BENCH" -benchmem -benchtime $ALLOCS_BENCHTIME >"$work/allocs.txt" 2>&1 || cat "$work/allocs.txt"
  rm -f bench/results/targets/*.pprof
  args+=(-window 15s -idle 500 -loopback-n 20,100,200,300 -one2many-n 100,300 -group-k 10 -joins 20 -pprof-at one2many:300
         -allocs-bench "$work/allocs.txt" -allocs-command "$allocs"
         -before bench/results/full/results.json,bench/results/before-1c7fcb7/results.json -label targets -out bench/results/targets)
else
  args+=(-label short -out bench/results/last)
fi
setsid ip netns exec "$CLI" nice -n $NICE taskset -c $CLI_CPU "$work/kms-bench" "${args[@]}" "${extra[@]}" &
tool_pid=$!; pids+=($tool_pid); prio $tool_pid
status=0
wait $tool_pid || status=$?
# The kernel's UDP counters of each namespace over the whole run: RcvbufErrors are datagrams a socket
# had no room for (a server or the tool not reading fast enough), loss the rows cannot tell apart.
for ns in "$SRV:servers'" "$CLI:tool's"; do
  ip netns exec "${ns%%:*}" awk -v who="${ns#*:}" '/^Udp:/ { if (seen) { for (i = 2; i <= NF; i++) if (h[i] ~ /^(InDatagrams|RcvbufErrors|InErrors)$/) printf " %s=%s", h[i], $i; print "" } else { seen = 1; split($0, h); printf "UDP in the %s namespace:", who } }' /proc/net/snmp
done
if grep -qiE "panic|fatal error" "$work/kms.log"; then echo "our server logged a panic:"; grep -iE -A20 "panic|fatal error" "$work/kms.log" | head -40; fi
exit $status
