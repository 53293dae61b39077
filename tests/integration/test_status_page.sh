#!/usr/bin/env bash
# The status page at / rendered by a real browser (headless Chromium)
# against the real agent after it received messages of several verticals
# and rejected a few, some with markup in their topic or detail: the
# rendered DOM must hold the device ids, the per-vertical counts and the
# reject reasons (so the page's JavaScript fetched and rendered
# /status.json), the hostile text as text (escaped, no element made from
# it), and with JavaScript off, the note saying the page needs it.
# Screenshot and DOM go to ${ARTIFACTS_DIR:-build/test-artifacts}/.
#
# Skipped (exit 0, with a SKIP line) only when chromium is not installed.
if ! command -v chromium >/dev/null 2>&1; then
    echo "SKIP: test_status_page: chromium is not installed (Debian package chromium)"
    exit 0
fi
source "$(dirname "$0")/lib.sh"

ARTIFACTS=${ARTIFACTS_DIR:-$REPO_ROOT/build/test-artifacts}
mkdir -p "$ARTIFACTS"
K=pagekey

# chromium ARGS... URL: headless, private profile, bounded in time.
chromium_run() {
    local profile
    profile=$(mktemp -d "$TEST_TMP/chromium.XXXXXX")
    timeout -k 10 120 chromium --headless --no-sandbox --disable-gpu \
        --disable-quic --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync \
        --user-data-dir="$profile" "$@" 2>>"$TEST_TMP/chromium.err"
}

# dom_has TEXT WHAT: the rendered DOM contains TEXT (fixed string).
dom_has() {
    grep -qF -- "$1" "$DOM" || fail "rendered page: no $2 ($1)"
}

start_mosquitto
start_postgres
HTTP_PORT=$(free_port)
BASE=http://127.0.0.1:$HTTP_PORT
AGENT_HTTP=$BASE # lib.sh ep_* helpers
# '#': topics of any shape reach the agent (and are rejected as "topic").
start_agent --http-listen "127.0.0.1:$HTTP_PORT" --mqtt-topic '#'
wait_for 60 "/ready" bash -c "curl -sf --max-time 5 '$BASE/ready'"

spotpub --count 5 --vertical aqo --apikey "$K" --devices 1 \
    --device-prefix SmartSpot_AQ_ --quiet || fail "publishing aqo failed"
spotpub --count 4 --vertical nlo --apikey "$K" --devices 2 \
    --device-prefix SmartSpot_NL_ --quiet || fail "publishing nlo failed"
spotpub --count 3 --vertical wto --apikey "$K" --devices 1 \
    --device-prefix SmartSpot_WT_ --quiet || fail "publishing wto failed"
# Rejects: a generic device of an apikey that is not a generic service
# group (seen, then rejected), broken JSON, a duplicate key made of markup
# (the detail quotes it), a topic made of markup, a missing mandatory field.
publish_payload "/$K/GenericSensor_7/attrs" '{"temperature":21.5}'
publish_payload "/${K}aqo/SmartSpot_AQ_0_AQO/attrs" '{"TimeInstant":'
publish_payload "/${K}aqo/SmartSpot_AQ_0_AQO/attrs" \
    '{"<img src=x onerror=alert(1)>":1,"<img src=x onerror=alert(1)>":2}'
publish_payload "/<script>alert(2)</script>/x/attrs" '{}'
publish_payload "/${K}aqo/SmartSpot_AQ_0_AQO/attrs" \
    '{"period":5,"status":"connected"}'

wait_for 30 "two json rejects" ep_metric_is 2 'spotagent_messages_rejected_total{reason="json"}'
wait_for 30 "one topic reject" ep_metric_is 1 'spotagent_messages_rejected_total{reason="topic"}'
wait_for 30 "one schema reject" ep_metric_is 1 'spotagent_messages_rejected_total{reason="schema"}'
wait_for 30 "one unknown_apikey reject" ep_metric_is 1 'spotagent_messages_rejected_total{reason="unknown_apikey"}'
wait_for 30 "12 rows" ep_metric_is 12 'spotagent_sink_writes_total{sink="pg"}'

# --- the page as a browser shows it ---------------------------------------------

SHOT=$ARTIFACTS/status-page.png
DOM=$ARTIFACTS/status-page.html
rm -f "$SHOT" "$DOM"
chromium_run --screenshot="$SHOT" --window-size=1280,900 \
    --virtual-time-budget=5000 "$BASE/" >/dev/null ||
    fail "chromium --screenshot failed (exit $?): $(tail -n 5 "$TEST_TMP/chromium.err")"
[ -s "$SHOT" ] || fail "no screenshot written"
[ "$(head -c 8 "$SHOT" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    fail "the screenshot is not a PNG"
log "screenshot: $SHOT"

chromium_run --dump-dom --virtual-time-budget=5000 "$BASE/" >"$DOM" ||
    fail "chromium --dump-dom failed (exit $?): $(tail -n 5 "$TEST_TMP/chromium.err")"
log "rendered DOM: $DOM ($(wc -c <"$DOM") bytes)"

# Filled by the script from /status.json (the served HTML has no rows).
dom_has '<p id="ready" class="big ok">ready</p>' "readiness"
dom_has '<p id="mqtt" class="big ok">connected</p>' "broker state"
dom_has '<tr data-sink="pg"><td class="mono">pg</td><td><span class="ok">ready</span></td><td class="n">0</td><td class="n">12</td>' \
    "pg sink row"
for d in SmartSpot_AQ_0 SmartSpot_NL_0 SmartSpot_NL_1 SmartSpot_WT_0 GenericSensor_7; do
    dom_has "<tr data-device=\"$d\"><td class=\"mono\">$d</td><td class=\"mono\">$K</td>" \
        "device $d"
done
dom_has '<span class="tag">generic</span>' "the generic device's vertical"
# vertical, msg/s, last minute, since start (aqo: 5 stored, 3 rejected)
for vc in aqo:8 nlo:4 wto:3 generic:1 cfo:0; do
    v=${vc%%:*}
    c=${vc#*:}
    grep -qE "<tr data-vertical=\"$v\"><td class=\"mono\">$v</td><td class=\"n\">[0-9]+\.[0-9]{2}</td><td class=\"n\">$c</td><td class=\"n\">$c</td>" \
        "$DOM" || fail "rendered page: no rate row for $v with $c messages"
done
grep -qE '<tr data-vertical="aqo"><td class="mono">aqo</td><td class="n">0\.00</td>' "$DOM" &&
    fail "rendered page: aqo rate is 0.00"
for r in json topic schema unknown_apikey; do
    dom_has "<tr data-reason=\"$r\">" "reject reason $r"
done
dom_has 'parse error at byte' "the broken JSON's detail"
dom_has 'duplicate key "&lt;img src=x onerror=alert(1)&gt;"' "the markup detail, as text"
dom_has '/&lt;script&gt;alert(2)&lt;/script&gt;/x/attrs' "the markup topic, as text"
grep -qi '<img' "$DOM" && fail "rendered page: an <img> element was made from data"
[ "$(grep -o '<script' "$DOM" | wc -l)" -eq 1 ] ||
    fail "rendered page: a <script> element was made from data"
dom_has '(5 since start, the last 50 kept)' "rejects count"

# --- with JavaScript off: the note, no data -------------------------------------------

# Headless Chromium cannot dump a page whose scripting is off, so the page
# goes into a sandboxed frame (scripts not allowed: scripting is off for
# it, as for a browser with JavaScript disabled) of a wrapper whose own
# script reads the text the frame renders.
curl -s --max-time 10 "$BASE/" >"$TEST_TMP/page.html" || fail "GET / failed"
{
    echo '<!doctype html><html><body>'
    echo '<iframe id="f" sandbox="allow-same-origin"></iframe><pre id="out"></pre>'
    echo '<script>'
    echo 'var f = document.getElementById("f");'
    echo 'f.addEventListener("load", function () {'
    echo '  document.getElementById("out").textContent ='
    echo '    f.contentDocument.body.innerText; });'
    echo "f.srcdoc = atob('$(base64 -w0 <"$TEST_TMP/page.html")');"
    echo '</script></body></html>'
} >"$TEST_TMP/nojs.html"
NOJS=$TEST_TMP/nojs.dom
chromium_run --dump-dom --virtual-time-budget=3000 \
    "file://$TEST_TMP/nojs.html" >"$NOJS" ||
    fail "chromium (page without JavaScript) failed (exit $?)"
sed -n '/<pre id="out">/,/<\/pre>/p' "$NOJS" >"$TEST_TMP/nojs.txt"
grep -q "This page needs JavaScript" "$TEST_TMP/nojs.txt" ||
    fail "without JavaScript the page does not show its note: $(head -c 400 "$TEST_TMP/nojs.txt")"
grep -q "waiting for data" "$TEST_TMP/nojs.txt" ||
    fail "the page's script ran in the frame without JavaScript"
grep -q "SmartSpot_AQ_0" "$TEST_TMP/nojs.txt" && fail "data without JavaScript?"

agent_alive || fail "the agent died"
stop_agent || fail "agent exited with status $?"
log "ok"
