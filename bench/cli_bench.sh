#!/usr/bin/env bash
# The host from the command line (issue 6): wall time of whole `tether mcp` runs, each a fresh
# process that loads the config, starts the servers it needs, does its job and ends everything.
# - call: `tether mcp call srv echo` with the C++ test server, local vs placed on an executor
#   that tether spawns on loopback (so the executor row includes spawning it), runs alternating.
# - concurrent startup: `tether mcp list` with 1 and with 8 servers that each take 1 s to answer
#   initialize; the 8/1 ratio is ~1 when startup is concurrent (8 if it were sequential).
# Medians, printed as a Markdown table. Usage: bench/cli_bench.sh <build dir> [runs]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
runs=${2:-20}
tether=$build/src/cli/tether
server=$build/tests/mcp/tether-test-mcp-server
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export TETHER_HOME=$dir/home
unset TETHER_EXEC_SERVER_URL TETHER_EXEC_SERVER_TOKEN

# config <file> <placement line> <count> <server args>
config() {
  { echo '[environments.loop]'; echo 'spawn = true'
    for ((i = 0; i < $3; i++)); do
      printf '[mcp_servers.srv%s]\ncommand = "%s"\nargs = [%s]\n%s\n' "$i" \
        "$server" "$4" "$2"
    done; } > "$1"
}
config "$dir/local.toml" "" 1 ""
config "$dir/remote.toml" 'environment = "loop"' 1 ""
for n in 1 8; do
  config "$dir/slow-local-$n.toml" "" "$n" '"--initialize-delay-ms", "1000"'
  config "$dir/slow-remote-$n.toml" 'environment = "loop"' "$n" '"--initialize-delay-ms", "1000"'
done

# Milliseconds one run of `tether mcp --config <file> <args...>` takes (it must succeed).
time_ms() {
  local file=$1; shift
  local start end
  start=$(date +%s%N)
  "$tether" mcp --config "$file" "$@" > /dev/null 2>&1 || { echo "cli_bench: tether mcp $* failed" >&2; exit 1; }
  end=$(date +%s%N)
  echo $(((end - start) / 1000000))
}
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

local_call=() remote_call=()
for ((i = 0; i < runs; i++)); do
  local_call+=("$(time_ms "$dir/local.toml" call srv0 echo --arg message=x)")
  remote_call+=("$(time_ms "$dir/remote.toml" call srv0 echo --arg message=x)")
done
declare -A slow
for placement in local remote; do
  for n in 1 8; do
    values=()
    for ((i = 0; i < 3; i++)); do values+=("$(time_ms "$dir/slow-$placement-$n.toml" list)"); done
    slow[$placement-$n]=$(printf '%s\n' "${values[@]}" | median)
  done
done
lc=$(printf '%s\n' "${local_call[@]}" | median)
rc=$(printf '%s\n' "${remote_call[@]}" | median)

echo "| tether mcp (whole runs, medians) | local | executor (spawned) | ratio |"
echo "|---|---|---|---|"
echo "| call srv echo, $runs runs each | $lc ms | $rc ms | $(awk "BEGIN {printf \"%.2fx\", $rc / $lc}") |"
echo "| list, 1 server with a 1 s initialize, 3 runs | ${slow[local-1]} ms | ${slow[remote-1]} ms | |"
echo "| list, 8 servers with a 1 s initialize, 3 runs | ${slow[local-8]} ms | ${slow[remote-8]} ms | |"
echo "| 8 servers / 1 server | $(awk "BEGIN {printf \"%.2fx\", ${slow[local-8]} / ${slow[local-1]}}") | $(awk "BEGIN {printf \"%.2fx\", ${slow[remote-8]} / ${slow[remote-1]}}") | |"
