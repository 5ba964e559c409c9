#!/usr/bin/env python3
"""Summarize one bench/tcp.sh run (its TSV): medians per entry and the project's target ratios.
Usage: summarize_tcp.py /tmp/net-bench/tcp-YYYYmmdd-HHMMSS.tsv"""
import csv, statistics, sys

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))

def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None

by = {}
for r in rows:
    by.setdefault(r["name"], []).append(r)

def col(name, key):
    return [v for v in (num(r[key]) for r in by.get(name, [])) if v is not None]

def med(name, key):
    v = col(name, key)
    return statistics.median(v) if v else None

def perrep(name, key):
    return {int(r["rep"]): num(r[key]) for r in by.get(name, []) if num(r[key]) is not None}

def fmt(x, nd=1):
    return "—" if x is None else f"{x:,.{nd}f}"

def rng(name, key, nd=0):
    v = col(name, key)
    return f"({min(v):,.{nd}f}–{max(v):,.{nd}f})" if len(v) > 1 else ""

pp = [n for n in by if by[n][0]["kind"] == "pp"]
bulk = [n for n in by if by[n][0]["kind"] == "bulk"]
if pp:
    print("Ping-pong (median of reps, min–max):")
    print(f"  {'server':<12} {'reps':>4} {'round trips/s':>26} {'srv µs/rt':>24} {'srv cores':>9} {'cli cores':>9} {'bg':>5}  errors")
    for n in pp:
        errs = ",".join(sorted({r["errors"] for r in by[n]}))
        print(f"  {n:<12} {len(col(n, 'value')):>4} {fmt(med(n, 'value'), 0):>9} {rng(n, 'value'):>16} "
              f"{fmt(med(n, 'srv_us_per_op'), 2):>7} {rng(n, 'srv_us_per_op', 2):>16} "
              f"{fmt(med(n, 'srv_cores'), 2):>9} {fmt(med(n, 'cli_cores'), 2):>9} {fmt(med(n, 'bg_cores'), 2):>5}  {errs}")
if bulk:
    print("Bulk, 1 connection, 64 KiB writes (median of reps, min–max):")
    print(f"  {'server':<19} {'reps':>4} {'MB/s':>22} {'srv µs/MB':>9} {'srv cores':>9} {'cli cores':>9} {'bg':>5}  errors")
    for n in bulk:
        errs = ",".join(sorted({r["errors"] for r in by[n]}))
        print(f"  {n:<19} {len(col(n, 'value')):>4} {fmt(med(n, 'value'), 0):>7} {rng(n, 'value'):>14} "
              f"{fmt(med(n, 'srv_us_per_op'), 0):>9} {fmt(med(n, 'srv_cores'), 2):>9} {fmt(med(n, 'cli_cores'), 2):>9} {fmt(med(n, 'bg_cores'), 2):>5}  {errs}")

# (label, numerator, denominator, metric, op, target)
TARGETS = [
    ("net-luajit srv µs/rt ÷ luv-luajit", "net-luajit", "luv-luajit", "srv_us_per_op", "<=", 0.85),
    ("net-luajit srv µs/rt ÷ tokio", "net-luajit", "tokio", "srv_us_per_op", "<=", 1.15),
    ("net-5.4 srv µs/rt ÷ tokio", "net-5.4", "tokio", "srv_us_per_op", "<=", 1.15),
    ("net-luajit bulk MB/s ÷ tokio", "bulk-net-luajit", "bulk-tokio", "value", ">=", 0.85),
    ("net-5.4 bulk MB/s ÷ tokio", "bulk-net-5.4", "bulk-tokio", "value", ">=", 0.85),
    # informative, no target
    ("net-5.4 srv µs/rt ÷ luv-5.4", "net-5.4", "luv-5.4", "srv_us_per_op", None, None),
    ("callbacks-5.4 srv µs/rt ÷ net-5.4", "callbacks-5.4", "net-5.4", "srv_us_per_op", None, None),
    ("callbacks-luajit srv µs/rt ÷ net-luajit", "callbacks-luajit", "net-luajit", "srv_us_per_op", None, None),
    ("callbacks-luajit srv µs/rt ÷ luv-luajit", "callbacks-luajit", "luv-luajit", "srv_us_per_op", None, None),
    ("net-5.4 rt/s ÷ tokio", "net-5.4", "tokio", "value", None, None),
    ("net-luajit rt/s ÷ tokio", "net-luajit", "tokio", "value", None, None),
    ("luv-luajit srv µs/rt ÷ tokio", "luv-luajit", "tokio", "srv_us_per_op", None, None),
    ("net-5.4 bulk MB/s ÷ luv-5.4", "bulk-net-5.4", "bulk-luv-5.4", "value", None, None),
    ("net-5.4 bulk srv µs/MB ÷ tokio", "bulk-net-5.4", "bulk-tokio", "srv_us_per_op", None, None),
    ("net-luajit bulk srv µs/MB ÷ tokio", "bulk-net-luajit", "bulk-tokio", "srv_us_per_op", None, None),
]
print("Ratios (A ÷ B: ratio of the medians; [median of per-rep ratios, reps paired as interleaved]):")
for label, a, b, key, op, tgt in TARGETS:
    ma, mb = med(a, key), med(b, key)
    if ma is None or mb is None or mb == 0:
        if op:
            print(f"  {label:<36} {'n/a':>6}   target {op} {tgt}  (not measured)")
        continue
    ratio = ma / mb
    pa, pb = perrep(a, key), perrep(b, key)
    paired = [pa[k] / pb[k] for k in pa if k in pb and pb[k]]
    pr = f"[{statistics.median(paired):.2f}]" if paired else ""
    if op:
        ok = ratio <= tgt if op == "<=" else ratio >= tgt
        verdict = f"target {op} {tgt}  {'MET' if ok else 'MISSED'}"
    else:
        verdict = "(info)"
    print(f"  {label:<36} {ratio:6.2f} {pr:>7}  {verdict}")
print(f"TSV: {sys.argv[1]}")
