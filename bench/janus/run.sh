#!/usr/bin/env bash
# Compares Dangwu's media engine with Janus VideoRoom under the same load: one
# publisher sending three simulcast layers and N receive-only subscribers, for each
# N given. Installs Janus when it is missing, builds the release binaries, then
# re-runs itself inside a new network namespace (`unshare -n`) with a veth pair whose
# addresses exist only there. Each run starts one server pinned to SERVER_CPU and
# the load generator (`sfu-compare`) pinned to CLIENT_CPU, and stops the server
# afterwards. Writes a Markdown report and prints its path.
#
# Usage: bench/janus/run.sh [SUBSCRIBERS...]    (default: 25 50 100 200)
#
# Environment:
#   SERVER_CPU, CLIENT_CPU  CPUs for the server and the load generator [0, 1]
#   LAYER                   simulcast layer every subscriber requests, 0-2 [2]
#   MEASURE_S, WARMUP_S     seconds of the measured window and before it [10, 3]
#   TARGETS                 servers to run, in order ["dangwu janus"]
#   REPORT                  report path [target/sfu-compare/report-DATE.md]
#
# Needs root (apt-get, unshare, ip) and the `ip` and `taskset` commands.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
here="$repo/bench/janus"
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
LAYER=${LAYER:-2}
MEASURE_S=${MEASURE_S:-10}
WARMUP_S=${WARMUP_S:-3}
TARGETS=${TARGETS:-dangwu janus}
counts=("$@")
[[ ${#counts[@]} -gt 0 ]] || counts=(25 50 100 200)

# Addresses from 198.18.0.0/15, the range RFC 2544 sets aside for benchmarks. They
# are assigned only inside the namespace, so no packet can leave it.
SERVER_IP=198.18.0.1
CLIENT_IP=198.18.0.2
JANUS_HTTP_PORT=8088
SFU_HTTP_PORT=8188

if [[ "${SFU_COMPARE_NAMESPACE:-}" != 1 ]]; then
    if ! command -v janus >/dev/null; then
        apt-get update
        apt-get install -y janus
    fi
    for tool in ip taskset unshare; do
        command -v "$tool" >/dev/null || { echo "$tool not found; install iproute2 and util-linux" >&2; exit 1; }
    done
    (cd "$repo" && cargo build --release -p dangwu-bench --bin sfu-server --bin sfu-compare)
    export REPORT=${REPORT:-$repo/target/sfu-compare/report-$(date -u +%Y%m%dT%H%M%SZ).md}
    mkdir -p "$(dirname "$REPORT")"
    exec unshare -n env SFU_COMPARE_NAMESPACE=1 "$0" "${counts[@]}"
fi

# Inside the new network namespace from here on.
ip link set lo up
ip link add v0 type veth peer name v1
ip addr add "$SERVER_IP/24" dev v0
ip addr add "$CLIENT_IP/24" dev v1
ip link set v0 up
ip link set v1 up
# Both ends are local addresses of this namespace. Janus (libnice) sends through v0,
# so its packets arrive on v1 with a local source address. Linux drops those as
# martian unless accept_local is set. These settings belong to the namespace alone.
for interface in all v0 v1; do
    sysctl -qw "net.ipv4.conf.$interface.accept_local=1" "net.ipv4.conf.$interface.rp_filter=0"
done

work=$(mktemp -d /tmp/sfu-compare.XXXXXX)
server_pid=
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid"
        wait "$server_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# Janus's configuration folder, from the templates.
lib_dir=$(dirname "$(dirname "$(dpkg -L janus | grep '/plugins/libjanus_videoroom.so$')")")
janus_conf="$work/janus-conf"
mkdir -p "$janus_conf"
sed -e "s|@CONFIG_DIR@|$janus_conf|" -e "s|@LIB_DIR@|$lib_dir|" -e "s|@ICE_INTERFACE@|v0|" \
    "$here/janus.jcfg.in" >"$janus_conf/janus.jcfg"
sed -e "s|@HTTP_PORT@|$JANUS_HTTP_PORT|" \
    "$here/janus.transport.http.jcfg.in" >"$janus_conf/janus.transport.http.jcfg"
cp "$here/janus.plugin.videoroom.jcfg" "$janus_conf/"

release="$repo/target/release"

# UDP datagrams dropped because a socket's receive buffer was full, counted for the
# whole namespace (servers and clients alike) from /proc/net/snmp.
udp_receive_buffer_errors() {
    awk '/^Udp:/ && $2 ~ /^[0-9]+$/ { print $6 }' /proc/net/snmp
}
notes=()
start_server() {
    local target=$1 log=$2
    case $target in
        dangwu)
            taskset -c "$SERVER_CPU" "$release/sfu-server" \
                --listen "127.0.0.1:$SFU_HTTP_PORT" --media-ip "$SERVER_IP" >"$log" 2>&1 &
            ;;
        janus)
            taskset -c "$SERVER_CPU" janus -F "$janus_conf" -E v0 -i "$SERVER_IP" -o >"$log" 2>&1 &
            ;;
        *)
            echo "unknown target $target; use dangwu or janus" >&2
            exit 1
            ;;
    esac
    server_pid=$!
}

server_url() {
    case $1 in
        dangwu) echo "http://127.0.0.1:$SFU_HTTP_PORT" ;;
        janus) echo "http://127.0.0.1:$JANUS_HTTP_PORT/janus" ;;
    esac
}

{
    echo "# SFU comparison: Dangwu media engine and Janus VideoRoom"
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- CPU: $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "- Memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "- Kernel: $(uname -r); $(rustc --version 2>/dev/null || echo 'rustc not on PATH'); $(janus --version 2>/dev/null | head -1)"
    echo "- Server on CPU $SERVER_CPU, load generator on CPU $CLIENT_CPU; layer $LAYER;" \
        "warm-up ${WARMUP_S} s, measured ${MEASURE_S} s"
    echo
    "$release/sfu-compare" --header --target dangwu --url x --server-pid 0 --subscribers 0
} >"$REPORT"

for count in "${counts[@]}"; do
    for target in $TARGETS; do
        log="$work/$target-$count.log"
        echo "run: $target with $count subscribers (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
        start_server "$target" "$log"
        drops_before=$(udp_receive_buffer_errors)
        if row=$(taskset -c "$CLIENT_CPU" "$release/sfu-compare" --target "$target" \
            --url "$(server_url "$target")" --server-pid "$server_pid" --subscribers "$count" \
            --client-ip "$CLIENT_IP" --layer "$LAYER" --warmup-s "$WARMUP_S" --measure-s "$MEASURE_S"); then
            echo "$row" | tee -a "$REPORT"
        else
            echo "| $target | $count | failed: see $log and the output above |" | tee -a "$REPORT"
        fi
        drops=$(($(udp_receive_buffer_errors) - drops_before))
        notes+=("- $target, $count subscribers: $drops UDP datagrams dropped for a full receive buffer")
        cleanup
        server_pid=
    done
done

{
    echo
    printf '%s\n' "${notes[@]}"
} >>"$REPORT"
echo >&2
echo "report: $REPORT (server logs in $work)" >&2
