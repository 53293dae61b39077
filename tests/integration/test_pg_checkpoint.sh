#!/usr/bin/env bash
# The PostgreSQL sink's database checkpoint (spotagent_checkpoint), which is
# committed with the rows:
#   1. after a crash between the database COMMIT and the journal's own
#      checkpoint file (simulated by putting back an older file), the agent
#      resumes from the database checkpoint and writes nothing again;
#   2. a database of schema version 1, whose checkpoint row was keyed by
#      sink alone, is migrated to version 2 (keyed by sink and journal),
#      keeping the row, and the agent resumes from it;
#   3. a second agent with its own journal writing to the same database gets
#      a row of its own instead of overwriting the first one's.
source "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || fail "curl is not installed"

start_mosquitto
start_postgres
agent_http_port
ARGS=(--http-listen "127.0.0.1:$AGENT_HTTP_PORT")
CKPT=$AGENT_DATA/journal/checkpoint.pg
PG_WRITES='spotagent_sink_writes_total{sink="pg"}'
PG_BACKLOG='spotagent_sink_backlog_messages{sink="pg"}'

db_seq() { psql_q "SELECT seq FROM spotagent_checkpoint WHERE sink = 'pg' AND journal_id = '$(cat "$AGENT_DATA/journal/JOURNAL_ID")'"; }
file_seq() { sed -n 's/^seq //p' "$CKPT"; }

# --- 1. resume from the database checkpoint ---------------------------------
start_agent "${ARGS[@]}"
spotpub --qos 1 --count 1000 --devices 5 --vertical aqo --apikey ck1 \
    --start 1700000000 --quiet || fail "spotpub failed"
wait_total 1000 60
stop_agent || fail "agent exited with status $?"
cp "$CKPT" "$TEST_TMP/checkpoint.old"
old_seq=$(file_seq)

start_agent "${ARGS[@]}"
spotpub --qos 1 --count 2000 --devices 5 --vertical aqo --apikey ck2 \
    --start 1700000000 --quiet || fail "spotpub failed"
wait_total 3000 60
stop_agent || fail "agent exited with status $?"
new_seq=$(db_seq)
assert_eq "$new_seq" "$(file_seq)" "journal checkpoint after a clean stop"
[ "$new_seq" -gt "$old_seq" ] || fail "checkpoint did not advance ($old_seq -> $new_seq)"

# The agent "died" after COMMIT, before its checkpoint file caught up.
cp "$TEST_TMP/checkpoint.old" "$CKPT"
start_agent "${ARGS[@]}"
wait_for 30 "the PostgreSQL sink to catch up" ep_metric_is 0 "$PG_BACKLOG"
assert_eq 0 "$(ep_metric "$PG_WRITES")" "rows written again after the resume"
assert_match "resumed from the database checkpoint \\(record $new_seq, journal checkpoint was $old_seq\\)" \
    "$(cat "$AGENT_STDERR")" "agent log"
assert_eq 3000 "$(pg_total_rows)" "rows"
stop_agent || fail "agent exited with status $?"

# --- 2. migration from schema version 1 --------------------------------------
# Turn the database back into version 1's layout, with the row made before.
psql_q "ALTER TABLE spotagent_checkpoint DROP CONSTRAINT spotagent_checkpoint_pkey;
        ALTER TABLE spotagent_checkpoint ADD PRIMARY KEY (sink);
        DELETE FROM spotagent_schema_version WHERE version >= 2" >/dev/null
cp "$TEST_TMP/checkpoint.old" "$CKPT"
start_agent "${ARGS[@]}"
wait_for 30 "the PostgreSQL sink to catch up" ep_metric_is 0 "$PG_BACKLOG"
assert_eq 2 "$(psql_q "SELECT max(version) FROM spotagent_schema_version")" "schema version"
assert_eq "sink,journal_id" "$(psql_q "SELECT string_agg(a.attname, ',' ORDER BY k.n)
    FROM pg_constraint c CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(att, n)
    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.att
    WHERE c.conrelid = 'spotagent_checkpoint'::regclass AND c.contype = 'p'")" \
    "checkpoint primary key"
assert_eq "$new_seq" "$(db_seq)" "checkpoint row kept by the migration"
assert_eq 0 "$(ep_metric "$PG_WRITES")" "rows written again after the migration"
stop_agent || fail "agent exited with status $?"

# --- 3. a second journal gets its own row ------------------------------------
AGENT_ID=$AGENT_ID-b AGENT_DATA=$TEST_TMP/agent-b start_agent "${ARGS[@]}"
spotpub --qos 1 --count 500 --devices 5 --vertical aqo --apikey ck3 \
    --start 1700000000 --quiet || fail "spotpub failed"
wait_total 3500 60
stop_agent || fail "agent exited with status $?"
assert_eq 2 "$(psql_q "SELECT count(*) FROM spotagent_checkpoint WHERE sink = 'pg'")" \
    "checkpoint rows (one per journal)"
assert_eq "$new_seq" "$(db_seq)" "first agent's checkpoint after the second agent ran"
