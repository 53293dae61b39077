#!/usr/bin/env python3
"""Writes the generated part of the fuzz seed corpora (tests/fuzz/corpus/).

Run from the repository root: python3 tests/fuzz/make_seeds.py. It writes
files named seed-*; crashers found later are added by hand as crash-* and
are never touched here. The seeds are checked in, so `make check` does not
need python.
"""
import os
import struct
import zlib

ROOT = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(ROOT, "..", "fixtures", "vectors")
CORPUS = os.path.join(ROOT, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


BASE = '"TimeInstant":"2023-03-20T13:50:00Z","period":5,"status":"connected"'


def messages():
    out = {}
    for fn in sorted(os.listdir(VECTORS)):
        code = fn.split(".")[0]
        with open(os.path.join(VECTORS, fn), "rb") as f:
            body = f.read()
        topic = "/K%s/dev1_%s/attrs" % (code, code.upper())
        out["vector-" + fn.replace(".json", "")] = topic.encode() + b"\n" + body
    aqo = "/Kaqo/dev1_AQO/attrs\n"
    extra = {
        "aqo-range": aqo + "{%s,\"pm2\":20000,\"pm10\":40.5}" % BASE,
        "aqo-nulls": aqo + "{%s,\"no2-a4\":null,\"co2\":null}" % BASE,
        "aqo-extra": aqo + "{%s,\"x\":{\"a\":[1,2,{\"b\":null}]},\"y\":true}"
        % BASE,
        "aqo-dupkey": aqo + "{%s,\"x\":1,\"x\":2}" % BASE,
        "aqo-dup-field": aqo + "{%s,\"pm2\":1,\"pm2\":2}" % BASE,
        "aqo-deep": aqo + "{%s,\"x\":%s1%s}" % (BASE, "[" * 40, "]" * 40),
        "aqo-utf8": aqo + "{%s,\"note\":\"caf\u00e9 \\u00e9 \\ud83d\\ude00\"}"
        % BASE,
        "aqo-bignum": aqo + "{%s,\"pm2\":1e400}" % BASE,
        "aqo-longnum": aqo + "{%s,\"pm2\":%s}" % (BASE, "1" * 80),
        "aqo-frac": aqo + "{\"TimeInstant\":\"2024-02-29T23:59:59.123456789Z\","
        "\"period\":5,\"status\":\"connected\"}",
        "aqo-array": aqo + "[1,2,3]",
        "generic": "/G/thing1/attrs\n{\"TimeInstant\":\"2023-03-20T13:50:00Z\","
        "\"t\":21.5,\"on\":true,\"tags\":[\"a\",\"b\"]}",
        "generic-no-time": "/G/thing1/attrs\n{\"t\":1}",
        "restricted": "/Raqo/SmartSpot_AQ_1_AQO/attrs\n{%s,\"pm2\":3}" % BASE,
        "restricted-bad-vertical": "/Rnlo/dev1_NLO/attrs\n{%s}" % BASE,
        "cfe": "/Kcfe/dev1_CFE/attrs\n{\"TimeInstant\":\"2023-03-20T13:50:00Z\","
        "\"period\":5,\"detectionType\":1,\"visitorId\":\"%s\",\"random\":0,"
        "\"duration\":30}" % ("ab" * 20),
        "dev-bools": "/Kdev/dev1_DEV/attrs\n{%s,\"wifiEnabled\":\"true\","
        "\"cellularEnabled\":\"false\"}" % BASE,
        "selector-byte": "\x00{%s}" % BASE,
    }
    out.update({k: v.encode() for k, v in extra.items()})
    return out


def topics():
    return {
        "aqo": "/JRI9jTbEKJQS29y3bc8BC6aqo/SmartSpot_AQ_1_AQO/attrs",
        "mixed-case": "/KaQo/d_aqo/attrs",
        "generic": "/legacy42/thing/attrs",
        "mismatch": "/Kaqo/d_NLO/attrs",
        "dh0": "/Kdho/d_DH0/attrs",
        "empty-level": "//d_AQO/attrs",
        "wildcard": "/+/#/attrs",
        "four-levels": "/a/b/c/attrs",
        "long": "/" + "a" * 300 + "aqo/" + "d" * 250 + "_AQO/attrs",
        "illegal": "/K(aqo/d_AQO/attrs",
    }


def seg_header(first):
    h = b"SPOTJSEG" + struct.pack("<QI", first, 1)
    return h + struct.pack("<I", zlib.crc32(h))


def record(seq, topic, payload, us=1700000000000000):
    body = struct.pack("<QqHHI", seq, us, len(topic), 0, len(payload))
    crc = zlib.crc32(body + topic + payload)
    return struct.pack("<II", 0x314C4A53, crc) + body + topic + payload


def journal_input(flags, seg1, seg2=b"", ckpt=b""):
    return (bytes([flags]) + struct.pack("<H", len(seg1)) + seg1 +
            struct.pack("<H", len(seg2)) + seg2 + ckpt)


def journals():
    t = b"/Kaqo/dev1_AQO/attrs"
    p = b'{"TimeInstant":"2023-03-20T13:50:00Z","period":5}'
    recs = b"".join(record(i, t, p) for i in range(3))
    seg1 = seg_header(0) + recs
    seg2 = seg_header(3) + b"".join(record(3 + i, t, p) for i in range(2))
    torn = seg1 + record(3, t, p)[:40]
    return {
        "one-segment": journal_input(0x00, seg1),
        "two-segments": journal_input(0x04, seg1, seg2),
        "torn-tail": journal_input(0x00, torn),
        "corrupt-middle": journal_input(0x04, seg1[:60] + b"X" + seg1[61:],
                                        seg2),
        "fix-crc": journal_input(0x03, recs.replace(b"2023", b"2024")),
        "fix-crc-two": journal_input(0x0F, recs, recs),
        "ckpt-raw": journal_input(0x14, seg1, seg2,
                                  b"spotagent journal checkpoint v1\nseq 2\n"),
        "ckpt-made": journal_input(0x34, seg1, seg2,
                                   struct.pack("<QQQ", 3, 2, 24)),
        "empty": b"",
    }


def agent_configs():
    return {
        "guide": '{"mqtt_url":"mqtts://broker.example:8883",'
        '"pg_url":"host=db dbname=city user=spot",'
        '"service_groups":[{"apikey":"JRI9jTbEKJQS29y3bc8BC6",'
        '"service":"city","service_path":"/environment",'
        '"verticals":["aqo","nlo","wto"]},{"apikey":"legacy42",'
        '"generic":true,"service":"city","service_path":"/legacy",'
        '"entity_types":{"generic":"Sensor"}}],'
        '"devices":{"SmartSpot_AQ_1":{"location":[-1.13,37.99],'
        '"address":"Calle Mayor 1","tags":[1,{"a":null}]}}}',
        "options": '{"mqtt_topic":["/+/+/attrs","/x/+/attrs"],"mqtt_qos":2,'
        '"journal_max_mb":5,"fsync_interval_ms":0,"log_level":"debug",'
        '"log_format":"json","http_listen":"[::1]:9000",'
        '"mqtt_share_group":"g1","ngsi_mapping":"compat",'
        '"orion_url":"http://orion:1026","data_dir":"/tmp/x"}',
        "bad-type": '{"mqtt_qos":"7"}',
        "unknown-key": '{"mqtt_urll":"mqtt://x"}',
        "deep": '{"devices":{"d":{"x":' + "[" * 50 + "]" * 50 + "}}}",
        "not-object": "[]",
    }


def device_configs():
    return {
        "doc": open(os.path.join(ROOT, "..", "..", "docs", "device.md"))
        .read().split("```json\n")[1].split("```")[0],
        "minimal": '{"mqtt_client":{"enable":true,"topic_prefix":"/k/d"},'
        '"sensors":{"aqo":{}}}',
        "bad": '{"mqtt_client":{"enable":true,"transport":2,"keep_alive":10,'
        '"lwt_topic":"/k/d/lwt","qos":3,"17":true},'
        '"sensors":{"aqo":{"fields":["no2"]}}}',
        "ids": '{"mqtt_client":{"1":4,"2":"wss://u:p@h/path","3":443,'
        '"16":"/k/d"},"device":{"client_id":"c"}}',
    }


def dead_records():
    def one(reason, topic, detail, payload, prefixed=True):
        t = reason.encode()
        body = struct.pack("<II", len(topic), len(detail)) + topic + detail
        return bytes([1 if prefixed else 0, len(t)]) + t + body + payload
    return {
        "ngsi": one("ngsi_rejected", b"/Kaqo/d_AQO/attrs", b"400 bad", b"{}"),
        "json": one("json", b"/t", b"", b"x"),
        "bad-reason": one("nope", b"/t", b"", b""),
        "short": one("schema", b"", b"", b"")[:6],
        "huge-len": bytes([1, 4]) + b"json" + struct.pack("<II", 0xFFFFFFFF, 5),
    }


def ngsi_responses():
    return {
        "orion-error": '{"error":"BadRequest","description":"Invalid '
        'characters in attribute value"}',
        "ld-problem": '{"type":"https://uri.etsi.org/ngsi-ld/errors/'
        'BadRequestData","title":"Bad","detail":"x"}',
        "ld-207": '{"success":["urn:a"],"errors":[{"entityId":"urn:b",'
        '"error":{"type":"InternalError","status":500,"title":"t"}}]}',
        "html": "<html>502 Bad Gateway</html>\r\n",
        "empty": "",
        "entity": '{"id":"x","type":"T"}',
    }


def spool_record(seq, topic, payload, qos=1, retain=False):
    body = bytes([qos, 1 if retain else 0]) + struct.pack("<H", len(topic))
    body += topic + payload
    crc = zlib.crc32(struct.pack("<Q", seq) + body)
    return struct.pack("<IIQ", len(body), crc, seq) + body


def spool_input(flags, first2, seg1, seg2=b"", head=b""):
    return (bytes([flags]) + struct.pack("<Q", first2) +
            struct.pack("<H", len(seg1)) + seg1 +
            struct.pack("<H", len(seg2)) + seg2 + head)


def spools():
    t = b"/Kaqo/dev1_AQO/attrs"
    p = b'{"TimeInstant":"2026-01-05T00:00:00Z","period":5}'
    seg1 = b"".join(spool_record(1 + i, t, p) for i in range(3))
    seg2 = b"".join(spool_record(4 + i, t, p, qos=2) for i in range(2))
    head = struct.pack("<I", 0x44485053)
    hv = struct.pack("<Q", 2)
    head += struct.pack("<I", zlib.crc32(hv)) + hv
    return {
        "one-segment": spool_input(0x00, 0, seg1),
        "two-segments": spool_input(0x02, 4, seg1, seg2),
        "with-head": spool_input(0x06, 4, seg1, seg2, head),
        "torn": spool_input(0x00, 0, seg1 + seg2[:20]),
        "corrupt-first": spool_input(0x02, 4, seg1[:30] + b"X" + seg1[31:],
                                     seg2),
        "fix": spool_input(0x0B, 0, seg1.replace(b"2026", b"2027"), seg2),
        "overlap": spool_input(0x02, 2, seg1, seg2),
        "huge-first": spool_input(0x03, 0xFFFFFFFFFFFFFFFE, seg1, seg2),
    }


def main():
    msgs = messages()
    for k, v in msgs.items():
        put("validate", k, v)
        put("ngsi_encode", k, v)
    for k, v in topics().items():
        put("topic", k, v)
    for k, v in journals().items():
        put("journal", k, v)
    for k, v in agent_configs().items():
        put("agent_config", k, v)
    for k, v in device_configs().items():
        put("device_config", k, v)
    for k, v in dead_records().items():
        put("dead_record", k, v)
    for k, v in ngsi_responses().items():
        put("ngsi_response", k, v)
    for k, v in spools().items():
        put("spool", k, v)


main()
