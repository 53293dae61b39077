#!/usr/bin/env bash
# Mosquitto restarts (same port, persistence on) under a running agent:
# the agent reconnects by itself and messages published after the restart
# land. Then the persistent session: messages published while the agent is
# down are queued by the broker, survive a broker restart, and land once
# the agent is back.
source "$(dirname "$0")/lib.sh"

start_mosquitto
start_postgres
start_agent

id_re=${AGENT_ID//./\\.}
connections() { mqtt_log_count "New client connected from .* as $id_re "; }
connections_gt() { [ "$(connections)" -gt "$1" ]; }

pub() { # apikey count
    spotpub --qos 1 --count "$2" --devices 3 --vertical all --apikey "$1" \
        --quiet || fail "spotpub $1 failed"
}

pub before 300
wait_total 300 60

# 1. Broker restart while the agent runs.
c=$(connections)
restart_mosquitto
# Published right away: the agent may not be back yet, then the broker
# queues these in its persisted session.
pub rightafter 300
wait_for 60 "agent reconnected by itself" connections_gt "$c"
agent_alive || fail "agent died when the broker went away"
pub reconnected 300
wait_total 900 60

# 2. Queued while the agent is down, across a broker restart.
stop_agent || fail "agent exited with status $?"
pub queued 400
restart_mosquitto
start_agent
wait_total 1300 60
pub after 100
wait_total 1400 60

assert_no_duplicates
assert_eq 0 "$(pg_count rejected_message)" "rejected messages"
stop_agent || fail "agent exited with status $?"
