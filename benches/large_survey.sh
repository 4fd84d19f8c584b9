#!/usr/bin/env bash
# Latency of the survey-scale queries on the large synthetic survey
# (`wisecut sample --size large`), p50 and p95 over N sequential requests
# each, measured with curl against a `wisecut serve` started here.
#
#   benches/large_survey.sh DB_URL DATA_DIR [N]
#
#   DB_URL    the loaded catalogue, e.g. postgres://postgres@127.0.0.1:55433/wisecut_large
#   DATA_DIR  the `data/` directory the sample wrote (OUT/data)
#   N         requests per endpoint (default 40)
#
# WISECUT_BIN (default target/release/wisecut) and WISECUT_BENCH_PORT
# (default 18099) can be set. The first start of a server on a new survey
# fills TAP's ObsCore table and the sky index when they are missing; the
# script waits for /health before measuring.
set -euo pipefail
DB=${1:?usage: large_survey.sh DB_URL DATA_DIR [N]}
DATA=${2:?usage: large_survey.sh DB_URL DATA_DIR [N]}
N=${3:-40}
BIN=${WISECUT_BIN:-target/release/wisecut}
PORT=${WISECUT_BENCH_PORT:-18099}
BASE="http://127.0.0.1:$PORT"
WORK=$(mktemp -d)
PSQL=(psql "$DB" -At -c)

"$BIN" serve --db "$DB" --data "$DATA" --cache "$WORK/cache" --bind "127.0.0.1:$PORT" \
    --client-rate 100000 --client-burst 100000 --client-concurrency 1000 \
    --client-jobs-per-minute 100000 >"$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
started=$(date +%s)
until curl -sf "$BASE/health" >/dev/null; do
    if ! kill -0 $SERVER 2>/dev/null; then
        echo "server exited:"; cat "$WORK/serve.log"; exit 1
    fi
    sleep 1
done
echo "server ready after $(( $(date +%s) - started )) s"

# A position on a copied reduced frame of a late block, a coadd and the
# biggest SourceList's SLID, read from the catalogue itself.
read -r RA DEC <<<"$("${PSQL[@]}" "SELECT ra_center, dec_center FROM frame \
    WHERE frame_class = 'ReducedScienceFrame' AND path LIKE 'fields/%' \
    ORDER BY object_id DESC LIMIT 1" | tr '|' ' ')"
COADD=$("${PSQL[@]}" "SELECT object_id FROM frame WHERE frame_class = 'CoaddedRegriddedFrame' \
    ORDER BY object_id DESC LIMIT 1")
SLID=$("${PSQL[@]}" "SELECT slid FROM source_list ORDER BY slid DESC LIMIT 1")
echo "position $RA $DEC, coadd $COADD, SLID $SLID"

# p50 and p95 (ms) of N GETs (or POSTs with -X POST) of a URL; a URL with
# {i} gets the request number, so each request is new to every cache.
measure() {
    local name=$1 method=$2 url=$3
    local times=() code
    for ((i = 0; i < N; i++)); do
        local u=${url//\{i\}/$i}
        read -r code t <<<"$(curl -s -o "$WORK/body" -X "$method" -w '%{http_code} %{time_total}' "$BASE$u")"
        if [[ $code != 2* ]]; then
            echo "$name: HTTP $code for $u: $(head -c 300 "$WORK/body")" >&2
        fi
        times+=("$t")
        if [[ -n ${PLAN_MS_FILE:-} ]]; then
            python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["plan_ms"] / 1000)' \
                "$WORK/body" >>"$PLAN_MS_FILE" || true
        fi
    done
    printf '%s\n' "${times[@]}" | sort -g | awk -v name="$name" '
        { v[NR] = $1 * 1000 }
        END { p50 = v[int((NR + 1) * 0.50)]; p95 = v[int((NR - 1) * 0.95) + 1];
              printf "%-34s p50 %8.1f ms   p95 %8.1f ms   (n=%d)\n", name, p50, p95, NR }'
}

measure "SIA by position"      GET  "/vo/sia/query?POS=CIRCLE+$RA+$DEC+0.0{i}1&MAXREC=1000"
measure "/api/images by position" GET "/api/images?ra=$RA&dec=$DEC&size=2{i}"
measure "table page with a filter" GET "/table/ReducedScienceFrame?q=filter+%3D+g+and+object_id+%3E+{i}&size=50"
# SR from 0.0005 to 0.00195 degrees (2 to 7 arcsec).
measure "cone search (SCS)" GET "/vo/scs?RA=$RA&DEC=$DEC&SR=0.00{i}5"
# The object page walks the coadd's lineage (parents to the raw frames,
# children); pages take no unknown parameters, so each request is the same
# page (the lineage is not cached between requests).
measure "lineage walk of a coadd (object page)" GET "/object/$COADD"
# The jobs of an earlier run of this script are another server's (their
# results are in a cache directory that is gone): they are removed, so each
# request is planned and made again.
"${PSQL[@]}" "DELETE FROM job WHERE kind = 'deps'" >/dev/null
# The whole request (planned, made and answered inline), then the planning
# alone, as the job's summary reports it (plan_ms).
PLAN_MS_FILE="$WORK/plan" measure "6-source dependency cutouts" POST "/api/deps?slid=$SLID&ids=1:6&size=1{i}"
sort -g "$WORK/plan" | awk '
    { v[NR] = $1 * 1000 }
    END { p50 = v[int((NR + 1) * 0.50)]; p95 = v[int((NR - 1) * 0.95) + 1];
          printf "%-34s p50 %8.1f ms   p95 %8.1f ms   (n=%d)\n", "  planning of those requests", p50, p95, NR }'
