# The cluster benchmark of issue 14 (`ops/bench/run cluster`, and `ops/bench/run cluster-latency`
# for its part 4 alone), sourced by ops/bench/run: it
# uses its $work, $pids, $bin, secs, field, now, load1 and its cleanup, which stops
# everything started here. Every scenario runs on a fresh database of one throw-away
# PostgreSQL; nodes of a scenario are SIGKILLed at its end (a graceful stop would hand
# partitions over for up to --leave-timeout), and its database is dropped.

cluster_pg_url=""   # the URL ops/postgres printed (database topgun_test)
cluster_psql=()
cluster_nodes=()    # pids of the current scenario's nodes
cluster_ws=()       # their WebSocket URLs
cluster_http=()     # their HTTP URLs
cluster_names=()
cluster_token=""
cluster_db_url=""
cluster_psql_db=()
cluster_failed=""   # set when a measurement could not finish (the run exits 1 after the summary)
cluster_log_level="${BENCH_NODE_LOG_LEVEL:-debug}"  # the nodes' --log-level (part 4 lowers it)

# cluster_db NAME: a fresh database; sets cluster_db_url.
cluster_db() {
  PGOPTIONS="-c client_min_messages=warning" "${cluster_psql[@]}" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null
  cluster_db_url="${cluster_pg_url%/*}/$1"
  cluster_psql_db=("${cluster_psql[0]}" -X -q -v ON_ERROR_STOP=1 "$cluster_db_url")
}

# cluster_node NAME [--no-cluster] [extra args]: starts a node of the current scenario on
# $cluster_db_url and waits (up to 300 s) for its ready line; appends to
# cluster_nodes/ws/http/names. --no-cluster: a node on its own (no --cluster-port), as before
# the cluster existed: the single-node baseline on the same storage.
cluster_node() {
  local name=$1; shift
  local out="$work/$scenario-$name.out"
  local membership=(--cluster-port 0)
  if [ "${1:-}" = --no-cluster ]; then membership=(); shift; fi
  # CLUSTER_NODE_ARGS: extra options for every node (e.g. "--backup-count 0"), for diagnosis.
  local extra=()
  read -r -a extra <<<"${CLUSTER_NODE_ARGS:-}"
  "$work/topgun" data-plane --postgres-url "$cluster_db_url" --master-key-file "$work/master.key" --port 0 --json --dev-tenant \
    --node-id "$name" "${membership[@]}" --log-level "$cluster_log_level" "${extra[@]}" "$@" >"$out" 2>"$out.err" &
  local pid=$!
  pids+=("$pid")
  disown "$pid"  # no "Killed" notice from the shell when the scenario ends
  local line=""
  for _ in $(seq 3000); do
    if grep -q '^{' "$out" 2>/dev/null; then line=$(grep -m1 '^{' "$out"); break; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "node $name exited before it was ready; its stderr:" >&2
      tail -n 40 "$out.err" >&2
      return 1
    fi
    sleep 0.1
  done
  [ -n "$line" ] || { echo "node $name printed no ready line in 300 s; its stderr:" >&2; tail -n 40 "$out.err" >&2; return 1; }
  cluster_nodes+=("$pid")
  cluster_names+=("$name")
  cluster_ws+=("$(field "$line" dataPlaneURL)")
  cluster_http+=("$(field "$line" httpURL)")
  [ -n "$cluster_token" ] || cluster_token=$(field "$line" appToken)
}

join_by() { local IFS=$1; shift; echo "$*"; }

# cluster_settled LABEL [extra args of cluster_wait.py]: waits until every node of the
# scenario reports the same settled table (a JSON line into figures.jsonl).
cluster_settled() {
  local label=$1; shift
  if ! python3 "$here/cluster_wait.py" --http "$(join_by , "${cluster_http[@]}")" --expect "$(join_by , "${cluster_names[@]}")" \
       --label "$label" "$@" | tee -a "$work/figures.jsonl"; then
    echo "the cluster did not settle ($label); the nodes' stderr:" >&2
    cluster_tails
    return 1
  fi
}

# BENCH_LOG_DIR=DIR keeps every node's stderr there (the work directory goes at exit).
keep_logs() {
  [ -n "${BENCH_LOG_DIR:-}" ] || return 0
  mkdir -p "$BENCH_LOG_DIR"
  cp "$work/$scenario"-*.out.err "$BENCH_LOG_DIR/" 2>/dev/null || true
}

cluster_tails() {
  keep_logs
  local name
  for name in "${cluster_names[@]}"; do
    echo "--- $name (stderr, last 30 lines but PostgresNIO's and the HTTP stack's debug chatter)" >&2
    grep -v '\[PostgresNIO\]\|\[ServiceLifecycle\]\|\[HummingbirdWebSocket\]\|\[WSCore\]\|\[HummingbirdCore\]' "$work/$scenario-$name.out.err" \
      | tail -n 30 | cut -c1-400 >&2
  done
}

# Stops the scenario's nodes (SIGKILL), summarises their logs (a JSON line per node) and
# drops its database.
cluster_stop() {
  local pid name db=${cluster_db_url##*/} logs=()
  for pid in "${cluster_nodes[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${cluster_nodes[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  done
  keep_logs
  for name in "${cluster_names[@]}"; do logs+=("$name=$work/$scenario-$name.out.err"); done
  python3 "$here/cluster_logs.py" "$scenario" "${logs[@]}" | tee -a "$work/figures.jsonl" >&2
  cluster_nodes=(); cluster_ws=(); cluster_http=(); cluster_names=(); cluster_token=""
  "${cluster_psql[@]}" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}

# cluster_start SCENARIO N [extra node args]: a fresh database and N nodes n1..nN, started
# one after the other, then waits until they settle.
cluster_start() {
  scenario=$1
  local n=$2 i t0; shift 2
  cluster_db "tg_$scenario"
  t0=$(now)
  for i in $(seq 1 "$n"); do cluster_node "n$i" "$@"; done
  cluster_settled "$scenario-start" --since "$t0" --timeout 300
}

# The throw-away PostgreSQL every scenario makes its database in, the nodes' master key, and
# the setup figure.
cluster_pg_start() {
  local pgbin
  echo "== cluster: starting a throw-away PostgreSQL on port $TOPGUN_PG_PORT" >&2
  cluster_pg_url=$("$root/ops/postgres" start "$pg_dir")
  pg_started=1
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  cluster_psql=("$pgbin/psql" -X -q -v ON_ERROR_STOP=1 "$cluster_pg_url")
  head -c 32 /dev/urandom | base64 >"$work/master.key"
  local pg_pid
  pg_pid=$(head -n 1 "$pg_dir/data/postmaster.pid")
  python3 -c "import json, sys; print(json.dumps({'figure': 'cluster_setup', 'cores': $(nproc), 'pg_settings': 'fsync=off synchronous_commit=off full_page_writes=off (ops/postgres)', 'scale': $scale, 'node_args': sys.argv[1]}))" "${CLUSTER_NODE_ARGS:-}" \
    | tee -a "$work/figures.jsonl"
}

cluster_pg_stop() {
  "$root/ops/postgres" stop "$pg_dir" >/dev/null 2>&1 || true
  pg_started=""
}

# CLUSTER_PARTS picks the parts (default all four: 1,2,3,4).
phase_cluster() {
  local parts=${CLUSTER_PARTS:-1,2,3,4}
  cluster_pg_start

  if [[ ",$parts," == *",1,"* ]]; then
    local dur warm n routing t_part
    dur=$(secs 15); warm=$(secs 3)
    t_part=$(now)
    for n in 1 2 3; do
      echo "== cluster (1) $n node(s): PERSISTED puts, $dur s per point" >&2
      cluster_start "tp$n" "$n"
      # owner: 24 clients with a connection per node (24 x n connections); single: the same 24
      # clients on n1 alone; single-wide: as many connections on n1 as owner routing opens,
      # with the same batches in flight (a node serves one message of a connection at a
      # time, so the connection count matters when each forwarded batch waits for its owner).
      local variants=("owner owner 24 6" "single single 24 6")
      [ "$n" -gt 1 ] && variants+=("single-wide single $((24 * n)) $((6 / n))")
      local variant name clients window
      for variant in "${variants[@]}"; do
        read -r name routing clients window <<<"$variant"
        python3 -c "import json; print(json.dumps({'figure': 'load', 'label': 'cluster-$n-$name', 'load_avg_1m_before': $(load1)}))" \
          | tee -a "$work/figures.jsonl"
        "$bin/TopGunLoad" cluster-throughput --url "${cluster_ws[0]}" --token "$cluster_token" --routing "$routing" \
          --clients "$clients" --window "$window" --duration "$dur" --warmup "$warm" --label "cluster-$n-$name" \
          --node-pids "$(join_by , "${cluster_nodes[@]}")" --node-ids "$(join_by , "${cluster_names[@]}")" --pg-pid "$pg_pid" \
          | tee -a "$work/figures.jsonl" || { cluster_tails; return 1; }
      done
      cluster_stop
    done
    python3 -c "import json; print(json.dumps({'figure': 'cluster_part_time', 'part': 1, 'seconds': round($(now) - $t_part, 1)}))" | tee -a "$work/figures.jsonl"
  fi

  if [[ ",$parts," == *",2,"* ]]; then
    local rep victim t_part survivor_ws
    t_part=$(now)
    for rep in 1 2 3; do
      # n3 (joined last), n2, then n1 (the first node: most likely the coordinator).
      victim=$((4 - rep))
      echo "== cluster (2) failover $rep of 3: 3 nodes, default lease (5 s) and heartbeat (1 s), SIGKILL n$victim" >&2
      cluster_start "fo$rep" 3
      survivor_ws=${cluster_ws[$(( victim == 1 ? 1 : 0 ))]}
      "$bin/TopGunLoad" failover --url "$survivor_ws" --token "$cluster_token" --victim-node "n$victim" \
        --victim-pid "${cluster_nodes[$((victim - 1))]}" --label "failover-$rep" \
        | tee -a "$work/figures.jsonl" || { cluster_tails; return 1; }
      cluster_stop
    done
    python3 -c "import json; print(json.dumps({'figure': 'cluster_part_time', 'part': 2, 'seconds': round($(now) - $t_part, 1)}))" | tee -a "$work/figures.jsonl"
  fi

  if [[ ",$parts," == *",3,"* ]]; then
    local records t_part t0 t1 rows pending i drained t_spawn line
    records=${CLUSTER_RECORDS:-$(python3 -c "print(max(10000, int(round(1000000 * $scale))))")}
    t_part=$(now)
    echo "== cluster (3) rebalance: 2 nodes, $records records, then a 3rd node joins" >&2
    # The per-connection flood guard (20,000 ops/s) would slow the load; raised on all three.
    local fast=(--connection-ops-per-second 10000000)
    cluster_start rb 2 "${fast[@]}"
    "$bin/TopGunLoad" fill --url "${cluster_ws[0]}" --token "$cluster_token" --records "$records" \
      | tee -a "$work/figures.jsonl" || { cluster_tails; return 1; }
    # Wait until the write-behind drained: every node's /ready says pendingWrites 0 and
    # PostgreSQL holds every row.
    t0=$(now)
    drained=""
    for _ in $(seq 6000); do
      rows=$("${cluster_psql_db[@]}" -At -c "SELECT count(*) FROM records WHERE map_name = 'fill'" 2>/dev/null || echo 0)
      pending=0
      for i in "${!cluster_http[@]}"; do
        local p
        p=$(curl -s "${cluster_http[$i]}/ready" | python3 -c "import json,sys; print(json.load(sys.stdin).get('pendingWrites', 'x'))" 2>/dev/null || echo x)
        [ "$p" = 0 ] || pending=1
      done
      if [ "$pending" = 0 ] && [ "$rows" -ge "$records" ]; then drained=1; break; fi
      sleep 0.2
    done
    t1=$(now)
    local rss=()
    for i in "${!cluster_nodes[@]}"; do rss+=("$(rss_kib "${cluster_nodes[$i]}")"); done
    python3 -c "import json; print(json.dumps({'figure': 'cluster_drain', 'drained': bool('$drained'), 'seconds_after_fill': round($t1 - $t0, 3), 'rows': $rows, 'records': $records, 'node_rss_mib': [round(int(x) / 1024) for x in '${rss[*]}'.split()]}))" \
      | tee -a "$work/figures.jsonl"
    [ -n "$drained" ] || { echo "the write-behind did not drain in 20 minutes" >&2; cluster_tails; return 1; }
    sleep 2
    echo "== cluster (3) starting n3" >&2
    t_spawn=$(now)
    cluster_node n3 "${fast[@]}"
    local t_ready
    t_ready=$(now)
    # Not settled: the figure says so; the run goes on to the summary, then fails.
    cluster_settled rebalance --new-node n3 --since "$t_spawn" --timeout "${CLUSTER_SETTLE_TIMEOUT:-300}" || cluster_failed=1
    rss=()
    for i in "${!cluster_nodes[@]}"; do rss+=("$(rss_kib "${cluster_nodes[$i]}")"); done
    rows=$("${cluster_psql_db[@]}" -At -c "SELECT count(*) FROM records WHERE map_name = 'fill'" 2>/dev/null || echo -1)
    python3 -c "import json; print(json.dumps({'figure': 'cluster_rebalance', 'records': $records, 'ready_line_s': round($t_ready - $t_spawn, 3), 'rows_after': $rows, 'node_rss_mib': [round(int(x) / 1024) for x in '${rss[*]}'.split()]}))" \
      | tee -a "$work/figures.jsonl"
    cluster_stop
    python3 -c "import json; print(json.dumps({'figure': 'cluster_part_time', 'part': 3, 'seconds': round($(now) - $t_part, 1)}))" | tee -a "$work/figures.jsonl"
  fi

  if [[ ",$parts," == *",4,"* ]]; then
    cluster_latency || return 1
  fi
  cluster_pg_stop
}

# (4) Live-query latency across nodes (issue 15): `TopGunLoad latency` with 1,000
# subscribers (an empty live query each on one map) spread round-robin over the nodes and the
# writer on n1 putting 20 keys/s for 20 s at APPLIED, on
#   3-nodes        3 nodes of one cluster: each subscriber's node coordinates its query, each
#                  owner computes it as a feed and sends it back on its ordered stream;
#   1-node-cluster the same code path on a cluster of 1 (every feed on its own node, through
#                  its own stream);
#   single-node    one node without --cluster-port (no coordination): the baseline.
# Each on a fresh database of the same PostgreSQL, nodes logging at warning (as the latency
# phase of `ops/bench/run latency`; BENCH_NODE_LOG_LEVEL overrides). CLUSTER_LATENCY_ROUNDS
# (1) repeats the three in turn; CLUSTER_LATENCY_VARIANTS picks some of them;
# CLUSTER_LATENCY_SUBSCRIBERS and CLUSTER_LATENCY_RATE change the load, CLUSTER_LATENCY_PREFILL
# writes that many records first (each live query's result then holds them); BENCH_SCALE the
# duration.
cluster_latency() {
  local subs=${CLUSTER_LATENCY_SUBSCRIBERS:-1000} rate=${CLUSTER_LATENCY_RATE:-20} dur t_part round variant
  local cluster_log_level="${BENCH_NODE_LOG_LEVEL:-warning}"
  dur=$(secs 20)
  t_part=$(now)
  for round in $(seq 1 "${CLUSTER_LATENCY_ROUNDS:-1}"); do
    for variant in ${CLUSTER_LATENCY_VARIANTS:-3-nodes 1-node-cluster single-node}; do
      echo "== cluster (4) live-query latency, round $round, $variant: $subs subscribers, $rate writes/s for $dur s, writer on n1" >&2
      case "$variant" in
        3-nodes) cluster_start "lat3_$round" 3 || return 1 ;;
        1-node-cluster) cluster_start "lat1_$round" 1 || return 1 ;;
        single-node)
          scenario="latsingle_$round"
          cluster_db "tg_latsingle_$round"
          cluster_node n1 --no-cluster || return 1
          ;;
        *) echo "unknown CLUSTER_LATENCY_VARIANTS entry: $variant" >&2; return 1 ;;
      esac
      local sub_urls=() ws label="cluster-latency-$variant-$round"
      for ws in "${cluster_ws[@]}"; do sub_urls+=(--subscriber-url "$ws"); done
      python3 -c "import json; print(json.dumps({'figure': 'load', 'label': '$label', 'load_avg_1m_before': $(load1)}))" \
        | tee -a "$work/figures.jsonl"
      "$bin/TopGunLoad" latency --url "${cluster_ws[0]}" --token "$cluster_token" "${sub_urls[@]}" --prefill "${CLUSTER_LATENCY_PREFILL:-0}" \
        --subscribers "$subs" --writes-per-second "$rate" --duration "$dur" --label "$label" --drain-timeout 60 --split-by-owner \
        --server-pid "${cluster_nodes[0]}" --node-pids "$(join_by , "${cluster_nodes[@]}")" --node-ids "$(join_by , "${cluster_names[@]}")" \
        | tee -a "$work/figures.jsonl" || { cluster_tails; cluster_stop; return 1; }
      cluster_stop
    done
  done
  python3 -c "import json; print(json.dumps({'figure': 'cluster_part_time', 'part': 4, 'seconds': round($(now) - $t_part, 1)}))" | tee -a "$work/figures.jsonl"
}
