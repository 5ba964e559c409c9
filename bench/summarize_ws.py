#!/usr/bin/env python3
"""Summarize one bench/ws.sh run (its TSV): medians per entry and the project's target ratios.
Usage: summarize_ws.py /tmp/net-bench/ws-YYYYmmdd-HHMMSS.tsv"""
import csv, statistics, sys

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


by = {}  # (name, test) -> rows
names, tests = [], []
for r in rows:
    by.setdefault((r["name"], r["test"]), []).append(r)
    if r["name"] not in names:
        names.append(r["name"])
    if r["test"] not in tests:
        tests.append(r["test"])


def col(name, test, key):
    return [v for v in (num(r[key]) for r in by.get((name, test), [])) if v is not None]


def med(name, test, key):
    v = col(name, test, key)
    return statistics.median(v) if v else None


def perrep(name, test, key):
    return {int(r["rep"]): num(r[key]) for r in by.get((name, test), []) if num(r[key]) is not None}


def fmt(x, nd=1):
    return "—" if x is None else f"{x:,.{nd}f}"


def rng(name, test, key, nd=0):
    v = col(name, test, key)
    return f"({min(v):,.{nd}f}–{max(v):,.{nd}f})" if len(v) > 1 else ""


echo_tests = [t for t in tests if t.startswith("echo-w")]
for t in echo_tests:
    print(f"Echo, window {t[6:]} (median of reps, min–max):")
    print(f"  {'server':<16} {'reps':>4} {'msgs/s':>26} {'srv µs/msg':>24} {'srv cores':>9} {'cli cores':>9} {'bg':>5}  errors")
    for n in names:
        if (n, t) not in by:
            continue
        errs = ",".join(sorted({r["errors"] for r in by[(n, t)]}))
        print(f"  {n:<16} {len(col(n, t, 'msgs_per_s')):>4} {fmt(med(n, t, 'msgs_per_s'), 0):>9} {rng(n, t, 'msgs_per_s'):>16} "
              f"{fmt(med(n, t, 'srv_us_per_msg'), 2):>7} {rng(n, t, 'srv_us_per_msg', 2):>16} "
              f"{fmt(med(n, t, 'srv_cores'), 2):>9} {fmt(med(n, t, 'cli_cores'), 2):>9} {fmt(med(n, t, 'bg_cores'), 2):>5}  {errs}")

if "idle" in tests:
    nconns = max((num(r["conns"]) or 0 for r in rows if r["test"] == "idle"), default=0)
    print(f"Idle memory, {nconns:,.0f} idle connections (median of reps, min–max):")
    print(f"  {'server':<16} {'reps':>4} {'RSS idle KiB':>12} {'RSS w/ conns KiB':>16} {'KiB/conn':>20} "
          f"{'Lua heap KiB/conn':>17} {'open s':>6}  errors")
    for n in names:
        if (n, "idle") not in by:
            continue
        errs = ",".join(sorted({r["errors"] for r in by[(n, "idle")]}))
        print(f"  {n:<16} {len(col(n, 'idle', 'kib_per_conn')):>4} {fmt(med(n, 'idle', 'rss_base_kib'), 0):>12} "
              f"{fmt(med(n, 'idle', 'rss_conns_kib'), 0):>16} {fmt(med(n, 'idle', 'kib_per_conn'), 1):>7} "
              f"{rng(n, 'idle', 'kib_per_conn', 1):>12} {fmt(med(n, 'idle', 'lua_kib_per_conn'), 2):>17} "
              f"{fmt(med(n, 'idle', 'connect_s'), 2):>6}  {errs}")

# (label, numerator, denominator, test, metric, op, target)
W = "echo-w16"
TARGETS = [
    ("w16 net-luajit msgs/s ÷ node-ws", "net-luajit", "node-ws", W, "msgs_per_s", ">=", 1.2),
    ("w16 net-luajit msgs/s ÷ tungstenite", "net-luajit", "tungstenite", W, "msgs_per_s", ">=", 0.8),
    ("w16 net-luajit msgs/s ÷ lua-http-luajit", "net-luajit", "lua-http-luajit", W, "msgs_per_s", ">=", 4),
    ("w16 net-5.4 msgs/s ÷ node-ws", "net-5.4", "node-ws", W, "msgs_per_s", ">=", 1.2),
    ("w16 net-5.4 msgs/s ÷ tungstenite", "net-5.4", "tungstenite", W, "msgs_per_s", ">=", 0.8),
    ("w16 net-5.4 msgs/s ÷ lua-http-5.4", "net-5.4", "lua-http-5.4", W, "msgs_per_s", ">=", 4),
    # informative, no target
    ("w16 net-luajit srv µs/msg ÷ node-ws", "net-luajit", "node-ws", W, "srv_us_per_msg", None, None),
    ("w16 net-luajit srv µs/msg ÷ tungstenite", "net-luajit", "tungstenite", W, "srv_us_per_msg", None, None),
    ("w16 net-5.4 srv µs/msg ÷ tungstenite", "net-5.4", "tungstenite", W, "srv_us_per_msg", None, None),
    ("w1 net-luajit msgs/s ÷ node-ws", "net-luajit", "node-ws", "echo-w1", "msgs_per_s", None, None),
    ("w1 net-luajit msgs/s ÷ tungstenite", "net-luajit", "tungstenite", "echo-w1", "msgs_per_s", None, None),
    ("w1 net-luajit msgs/s ÷ lua-http-luajit", "net-luajit", "lua-http-luajit", "echo-w1", "msgs_per_s", None, None),
    ("w1 net-5.4 msgs/s ÷ lua-http-5.4", "net-5.4", "lua-http-5.4", "echo-w1", "msgs_per_s", None, None),
    ("w1 net-luajit srv µs/msg ÷ tungstenite", "net-luajit", "tungstenite", "echo-w1", "srv_us_per_msg", None, None),
    ("w1 net-5.4 srv µs/msg ÷ tungstenite", "net-5.4", "tungstenite", "echo-w1", "srv_us_per_msg", None, None),
]
print("Ratios (A ÷ B: ratio of the medians; [median of per-rep ratios, reps paired as interleaved]):")
for label, a, b, test, key, op, tgt in TARGETS:
    ma, mb = med(a, test, key), med(b, test, key)
    if ma is None or mb is None or mb == 0:
        if op:
            print(f"  {label:<42} {'n/a':>6}   target {op} {tgt}  (not measured)")
        continue
    ratio = ma / mb
    pa, pb = perrep(a, test, key), perrep(b, test, key)
    paired = [pa[k] / pb[k] for k in pa if k in pb and pb[k]]
    pr = f"[{statistics.median(paired):.2f}]" if paired else ""
    if op:
        ok = ratio <= tgt if op == "<=" else ratio >= tgt
        verdict = f"target {op} {tgt}  {'MET' if ok else 'MISSED'}"
    else:
        verdict = "(info)"
    print(f"  {label:<42} {ratio:6.2f} {pr:>7}  {verdict}")

if "idle" in tests:
    print("Idle KiB per connection (RSS; target for net ≤ 8 KiB, Lua side included):")
    for n in ("net-luajit", "net-5.4"):
        v = med(n, "idle", "kib_per_conn")
        if v is None:
            print(f"  {n:<16} {'n/a':>6}   target <= 8  (not measured)")
            continue
        lua = med(n, "idle", "lua_kib_per_conn")
        mal = med(n, "idle", "malloc_kib_per_conn")
        mals = "" if mal is None else f", malloc in use {mal:.2f}"
        print(f"  {n:<16} {v:6.1f}   target <= 8  {'MET' if v <= 8 else 'MISSED'}"
              f"   (Lua heap {fmt(lua, 2)} KiB/conn{mals}; RSS − Lua heap = {fmt(None if lua is None else v - lua, 1)})")
    for n in ("lua-http-luajit", "lua-http-5.4", "node-ws", "tungstenite", "tungstenite-4k"):
        v = med(n, "idle", "kib_per_conn")
        if v is not None:
            print(f"  {n:<16} {v:6.1f}   (anchor)")
print(f"TSV: {sys.argv[1]}")
