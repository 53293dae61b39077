/*
 * The status page (status_page.h). The document is kept here as arrays of
 * lines (C11 caps a single string literal at 4095 bytes under -Wpedantic)
 * and joined once at start-up; the inline style and script are hashed
 * (SHA-256, base64) for the Content-Security-Policy header, so the browser
 * runs this script and nothing else even if some text slipped through.
 *
 * The script renders every value with textContent or as an attribute
 * value set through the DOM, never as markup: device ids, topics and
 * rejection details are attacker-controlled. Without JavaScript the page
 * says so and links to the raw endpoints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "spot/err.h"
#include "status_page.h"

static const char *const head[] = {
    "<!doctype html>",
    "<html lang=\"en\">",
    "<head>",
    "<meta charset=\"utf-8\">",
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
    "<title>spotagent status</title>",
    "<link rel=\"icon\" href=\"data:,\">",
    NULL,
};

static const char *const style[] = {
    ":root{color-scheme:light dark;--ok:#1a7f37;--bad:#cf222e;"
    "--warn:#9a6700;--muted:#6e7781;--line:#d0d7de;--bg2:#f6f8fa}",
    "@media (prefers-color-scheme:dark){:root{--ok:#3fb950;--bad:#f85149;"
    "--warn:#d29922;--muted:#8b949e;--line:#30363d;--bg2:#161b22}}",
    "body{font:14px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,"
    "sans-serif;margin:0 auto;max-width:1200px;padding:12px 16px}",
    "header{display:flex;flex-wrap:wrap;align-items:baseline;gap:12px;"
    "border-bottom:1px solid var(--line);padding-bottom:6px}",
    "h1{font-size:20px;margin:0}",
    "h2{font-size:15px;margin:18px 0 6px}",
    ".muted{color:var(--muted);font-weight:normal}",
    ".cards{display:grid;grid-template-columns:repeat(auto-fit,"
    "minmax(190px,1fr));gap:12px;margin-top:12px}",
    ".card{border:1px solid var(--line);border-radius:6px;"
    "padding:8px 12px;background:var(--bg2)}",
    ".card h2{margin:0;font-size:12px;text-transform:uppercase;"
    "letter-spacing:.04em;color:var(--muted)}",
    ".big{font-size:22px;margin:2px 0;font-weight:600}",
    ".small{font-size:12px;margin:0}",
    ".ok{color:var(--ok)}",
    ".bad{color:var(--bad)}",
    ".warn{color:var(--warn)}",
    "table{border-collapse:collapse;width:100%}",
    "th,td{text-align:left;padding:4px 8px;border-bottom:1px solid "
    "var(--line);vertical-align:baseline}",
    "th{font-size:12px;color:var(--muted);font-weight:600}",
    ".n{text-align:right;font-variant-numeric:tabular-nums;"
    "white-space:nowrap}",
    ".mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"
    "monospace;font-size:12px;word-break:break-all}",
    ".tag{display:inline-block;padding:0 6px;margin:0 4px 2px 0;"
    "border:1px solid var(--line);border-radius:10px;font-size:12px}",
    ".spark{display:flex;align-items:flex-end;height:18px;gap:1px;"
    "width:180px}",
    ".spark span{flex:1;background:var(--ok);min-height:1px}",
    ".note{border:1px solid var(--bad);border-radius:6px;padding:8px 12px;"
    "margin:12px 0}",
    "footer{margin-top:24px;font-size:12px}",
    NULL,
};

static const char *const body[] = {
    "</head>",
    "<body>",
    "<header><h1>spotagent</h1><span id=\"version\" class=\"muted\"></span>",
    "<span id=\"updated\" class=\"muted\">waiting for data</span></header>",
    "<noscript><p class=\"note\">This page needs JavaScript to show and "
    "refresh the agent's state. The same data is served as JSON at "
    "<a href=\"/status.json\">/status.json</a>; see also "
    "<a href=\"/metrics\">/metrics</a>, <a href=\"/ready\">/ready</a>, "
    "<a href=\"/health\">/health</a> and <a href=\"/version\">/version</a>."
    "</p></noscript>",
    "<p id=\"error\" class=\"note\" hidden></p>",
    "<section class=\"cards\">",
    "<div class=\"card\"><h2>Readiness</h2><p id=\"ready\" "
    "class=\"big\">&hellip;</p><p id=\"down\" class=\"small muted\"></p>"
    "</div>",
    "<div class=\"card\"><h2>Broker</h2><p id=\"mqtt\" class=\"big\">"
    "&hellip;</p></div>",
    "<div class=\"card\"><h2>Received</h2><p id=\"received-total\" "
    "class=\"big\">&hellip;</p><p id=\"rate-total\" class=\"small muted\">"
    "</p></div>",
    "<div class=\"card\"><h2>Rejected</h2><p id=\"rejected-total\" "
    "class=\"big\">&hellip;</p><p id=\"rejected-reasons\" "
    "class=\"small muted\"></p></div>",
    "</section>",
    "<section><h2>Sinks</h2>",
    "<table id=\"sinks\"><thead><tr><th>sink</th><th>state</th>"
    "<th class=\"n\">backlog</th><th class=\"n\">writes</th>"
    "<th class=\"n\">errors</th></tr></thead><tbody></tbody></table>",
    "</section>",
    "<section><h2>Messages per vertical <span class=\"muted\">(rate over "
    "the last <span id=\"window\">60</span> s)</span></h2>",
    "<table id=\"rates\"><thead><tr><th>vertical</th>"
    "<th class=\"n\">msg/s</th><th class=\"n\">last minute</th>"
    "<th class=\"n\">since start</th><th>last 60 s</th></tr></thead>"
    "<tbody></tbody></table>",
    "</section>",
    "<section><h2>Devices <span id=\"devices-count\" class=\"muted\">"
    "</span></h2>",
    "<table id=\"devices\"><thead><tr><th>device</th><th>apikey</th>"
    "<th>verticals</th><th class=\"n\">messages</th><th>last seen</th>"
    "</tr></thead><tbody></tbody></table>",
    "</section>",
    "<section><h2>Recent rejects <span id=\"rejects-count\" "
    "class=\"muted\"></span></h2>",
    "<table id=\"rejects\"><thead><tr><th>when</th><th>reason</th>"
    "<th>topic</th><th>detail</th></tr></thead><tbody></tbody></table>",
    "</section>",
    "<footer class=\"muted\">Refreshes every 2 s. Raw data: "
    "<a href=\"/status.json\">/status.json</a> &middot; "
    "<a href=\"/metrics\">/metrics</a> &middot; "
    "<a href=\"/version\">/version</a></footer>",
    NULL,
};

/* Every value goes through text() or an attribute set by the DOM. */
static const char *const script[] = {
    "'use strict';",
    "(function () {",
    "  var MAX_DEVICES = 200;",
    "  function $(id) { return document.getElementById(id); }",
    "  function el(tag, text, cls) {",
    "    var e = document.createElement(tag);",
    "    if (text !== undefined && text !== null) e.textContent = "
    "String(text);",
    "    if (cls) e.className = cls;",
    "    return e;",
    "  }",
    "  function td(content, cls) {",
    "    if (content instanceof Node) {",
    "      var c = el('td', null, cls); c.appendChild(content); return c;",
    "    }",
    "    return el('td', content, cls);",
    "  }",
    "  function fill(id, rows, empty, cols) {",
    "    var tb = $(id).tBodies[0];",
    "    while (tb.firstChild) tb.removeChild(tb.firstChild);",
    "    if (!rows.length) {",
    "      var tr = el('tr'), c = td(empty, 'muted');",
    "      c.colSpan = cols; tr.appendChild(c); tb.appendChild(tr);",
    "    }",
    "    rows.forEach(function (r) { tb.appendChild(r); });",
    "  }",
    "  function tr(cells) {",
    "    var r = el('tr');",
    "    cells.forEach(function (c) { r.appendChild(c); });",
    "    return r;",
    "  }",
    "  function num(n) { return Number(n || 0).toLocaleString('en-US'); }",
    "  function ago(s) {",
    "    s = Number(s) || 0;",
    "    if (s < 1) return 'just now';",
    "    if (s < 60) return Math.floor(s) + ' s ago';",
    "    if (s < 3600) return Math.floor(s / 60) + ' min ' + "
    "Math.floor(s % 60) + ' s ago';",
    "    if (s < 86400) return Math.floor(s / 3600) + ' h ' + "
    "Math.floor(s % 3600 / 60) + ' min ago';",
    "    return Math.floor(s / 86400) + ' d ago';",
    "  }",
    "  function state(id, ok, yes, no) {",
    "    var e = $(id); e.textContent = ok ? yes : no;",
    "    e.className = 'big ' + (ok ? 'ok' : 'bad');",
    "  }",
    "  function spark(series) {",
    "    var d = el('div', null, 'spark');",
    "    var max = Math.max.apply(null, [1].concat(series || []));",
    "    (series || []).forEach(function (n) {",
    "      var b = el('span');",
    "      b.style.height = Math.round(100 * n / max) + '%';",
    "      b.title = n + ' msg';",
    "      d.appendChild(b);",
    "    });",
    "    return d;",
    "  }",
    "  function sum(obj) {",
    "    return Object.keys(obj || {}).reduce(function (a, k) {",
    "      return a + Number(obj[k] || 0); }, 0);",
    "  }",
    NULL,
};

static const char *const script2[] = {
    "  function render(s) {",
    "    var act = s.activity || {};",
    "    state('ready', s.ready, 'ready', 'not ready');",
    "    $('down').textContent = s.ready ? '' : 'down: ' + "
    "(s.down || []).join(', ');",
    "    state('mqtt', s.mqtt_connected, 'connected', 'disconnected');",
    "    $('received-total').textContent = num(sum(s.received));",
    "    $('rejected-total').textContent = num(sum(s.rejected));",
    "    $('rejected-reasons').textContent = Object.keys(s.rejected || {})",
    "      .filter(function (k) { return s.rejected[k] > 0; })",
    "      .map(function (k) { return k + ' ' + num(s.rejected[k]); })",
    "      .join(' \\u00b7 ');",
    "    fill('sinks', (s.sinks || []).map(function (k) {",
    "      var st = el('span', k.ready ? 'ready' : 'down', "
    "k.ready ? 'ok' : 'bad');",
    "      var r = tr([td(k.name, 'mono'), td(st), td(num(k.backlog), "
    "'n'),",
    "                  td(num(k.writes), 'n'), td(num(k.errors), 'n')]);",
    "      r.dataset.sink = k.name;",
    "      return r;",
    "    }), 'no sink enabled', 5);",
    "    var rates = act.rates || {}, vs = rates.verticals || {}, "
    "total = 0;",
    "    $('window').textContent = rates.window_s || 60;",
    "    fill('rates', Object.keys(vs).map(function (v) {",
    "      total += Number(vs[v].per_second) || 0;",
    "      var r = tr([td(v, 'mono'),",
    "                  td(Number(vs[v].per_second || 0).toFixed(2), 'n'),",
    "                  td(num(vs[v].last_minute), 'n'),",
    "                  td(num((s.received || {})[v]), 'n'), "
    "td(spark(vs[v].series))]);",
    "      r.dataset.vertical = v;",
    "      return r;",
    "    }), 'no data', 5);",
    "    $('rate-total').textContent = total.toFixed(2) + ' msg/s over "
    "the last minute';",
    "    var devs = act.devices || [];",
    "    $('devices-count').textContent = '(' + num(act.devices_tracked) +",
    "      ' tracked, up to ' + num(act.devices_capacity) + '; ' +",
    "      num(act.devices_evicted) + ' evicted' +",
    "      (devs.length > MAX_DEVICES ? '; showing the ' + MAX_DEVICES +",
    "       ' most recent' : '') + ')';",
    "    fill('devices', devs.slice(0, MAX_DEVICES).map(function (d) {",
    "      var tags = el('span');",
    "      (d.verticals || []).forEach(function (v) {",
    "        tags.appendChild(el('span', v, 'tag')); });",
    "      var seen = td(ago(d.age_s));",
    "      seen.title = d.last_seen;",
    "      var r = tr([td(d.device, 'mono'), td(d.apikey, 'mono'), "
    "td(tags),",
    "                  td(num(d.messages), 'n'), seen]);",
    "      r.dataset.device = d.device;",
    "      return r;",
    "    }), 'no device seen yet', 5);",
    "    var rej = act.rejects || [];",
    "    $('rejects-count').textContent = '(' + num(act.rejects_total) +",
    "      ' since start, the last ' + num(act.rejects_capacity) + "
    "' kept)';",
    "    fill('rejects', rej.map(function (j) {",
    "      var when = td(ago(j.age_s));",
    "      when.title = j.time;",
    "      var r = tr([when, td(el('span', j.reason, 'tag bad')),",
    "                  td(j.topic, 'mono'), td(j.detail, 'mono')]);",
    "      r.dataset.reason = j.reason;",
    "      return r;",
    "    }), 'no rejected message', 4);",
    "    $('updated').textContent = 'updated ' + "
    "new Date().toLocaleTimeString();",
    "  }",
    "  function tick() {",
    "    fetch('/status.json', {cache: 'no-store'})",
    "      .then(function (r) {",
    "        if (!r.ok) throw new Error('HTTP ' + r.status);",
    "        return r.json();",
    "      })",
    "      .then(function (s) { render(s); $('error').hidden = true; })",
    "      .catch(function (e) {",
    "        $('error').textContent = 'Cannot reach the agent (' + "
    "e.message +",
    "          '); the values below may be stale.';",
    "        $('error').hidden = false;",
    "      })",
    "      .then(function () { setTimeout(tick, 2000); });",
    "  }",
    "  fetch('/version', {cache: 'no-store'})",
    "    .then(function (r) { return r.json(); })",
    "    .then(function (v) {",
    "      $('version').textContent = v.version + ' (git ' + "
    "v.git_revision + ')';",
    "    })",
    "    .catch(function () {});",
    "  tick();",
    "})();",
    NULL,
};

static const char *const tail[] = {
    "</body>",
    "</html>",
    NULL,
};

struct buf {
    char *p;
    size_t len, cap;
};

static int put(struct buf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return SPOT_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
    return SPOT_OK;
}

static int put_lines(struct buf *b, const char *const *lines)
{
    for (size_t i = 0; lines[i] != NULL; i++)
        if (put(b, lines[i]) != SPOT_OK || put(b, "\n") != SPOT_OK)
            return SPOT_ENOMEM;
    return SPOT_OK;
}

/* "sha256-<base64>" of len bytes at s, the CSP source expression. */
static int csp_hash(const char *s, size_t len, char out[64])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(s, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return SPOT_ENOMEM;
    memcpy(out, "sha256-", 7);
    EVP_EncodeBlock((unsigned char *)out + 7, md, (int)mdlen); /* 44 + NUL */
    return SPOT_OK;
}

/* Nothing but this page's own style and script, data from its origin. */
#define CSP_FORMAT                                                             \
    "default-src 'none'; style-src '%s'; script-src '%s'; "                    \
    "connect-src 'self'; img-src data:; base-uri 'none'; "                     \
    "form-action 'none'; frame-ancestors 'none'"

int status_page_build(char **html, size_t *len, char **csp)
{
    struct buf b = {NULL, 0, 0};
    char style_hash[64], script_hash[64];
    size_t start;
    int rc = put_lines(&b, head);
    if (rc == SPOT_OK)
        rc = put(&b, "<style>");
    start = b.len;
    if (rc == SPOT_OK)
        rc = put_lines(&b, style);
    if (rc == SPOT_OK)
        rc = csp_hash(b.p + start, b.len - start, style_hash);
    if (rc == SPOT_OK)
        rc = put(&b, "</style>\n");
    if (rc == SPOT_OK)
        rc = put_lines(&b, body);
    if (rc == SPOT_OK)
        rc = put(&b, "<script>");
    start = b.len;
    if (rc == SPOT_OK)
        rc = put_lines(&b, script);
    if (rc == SPOT_OK)
        rc = put_lines(&b, script2);
    if (rc == SPOT_OK)
        rc = csp_hash(b.p + start, b.len - start, script_hash);
    if (rc == SPOT_OK)
        rc = put(&b, "</script>\n");
    if (rc == SPOT_OK)
        rc = put_lines(&b, tail);
    char *policy = NULL;
    if (rc == SPOT_OK) {
        size_t n = sizeof CSP_FORMAT + sizeof style_hash + sizeof script_hash;
        policy = malloc(n);
        if (policy == NULL)
            rc = SPOT_ENOMEM;
        else
            snprintf(policy, n, CSP_FORMAT, style_hash, script_hash);
    }
    if (rc != SPOT_OK) {
        free(b.p);
        free(policy);
        return rc;
    }
    *html = b.p;
    *len = b.len;
    *csp = policy;
    return SPOT_OK;
}
