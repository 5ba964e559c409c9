#!/usr/bin/env python3
"""Summarize one bench/http.sh run (its TSV): medians per entry and the project's target ratios.
Usage: summarize_http.py /tmp/net-bench/http-YYYYmmdd-HHMMSS.tsv"""
import csv, statistics, sys

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


by = {}  # (part, name) -> rows
order = []
for r in rows:
    k = (r["part"], r["name"])
    if k not in by:
        order.append(k)
    by.setdefault(k, []).append(r)


def col(part, name, key):
    return [v for v in (num(r[key]) for r in by.get((part, name), [])) if v is not None]


def med(part, name, key):
    v = col(part, name, key)
    return statistics.median(v) if v else None


def perrep(part, name, key):
    return {int(r["rep"]): num(r[key]) for r in by.get((part, name), []) if num(r[key]) is not None}


def fmt(x, nd=1):
    return "—" if x is None else f"{x:,.{nd}f}"


def rng(part, name, key, nd=0):
    v = col(part, name, key)
    return f"({min(v):,.{nd}f}–{max(v):,.{nd}f})" if len(v) > 1 else ""


def errors(part, name):
    return ",".join(sorted({r["errors"] for r in by[(part, name)]}))


def names(part):
    return [n for p, n in order if p == part]


TITLES = {
    "h1": "HTTP/1.1 hello, wrk -t1 keep-alive",
    "h2": "HTTP/2 cleartext (prior knowledge) hello, h2load",
}
for part in ("h1", "h2"):
    if not names(part):
        continue
    conns = next((f", {r['conns']} connections" for r in rows if r["part"] == part and r["conns"] != "NA"), "")
    print(f"{TITLES[part]}{conns} (median of reps, min–max):")
    print(f"  {'server':<14} {'reps':>4} {'req/s':>26} {'srv µs/req':>24} {'p50 ms':>7} {'p99 ms':>7} {'srv cores':>9} {'cli cores':>9} {'bg':>5}  errors")
    for n in names(part):
        print(f"  {n:<14} {len(col(part, n, 'rps')):>4} {fmt(med(part, n, 'rps'), 0):>9} {rng(part, n, 'rps'):>16} "
              f"{fmt(med(part, n, 'srv_us_per_req'), 2):>7} {rng(part, n, 'srv_us_per_req', 2):>16} "
              f"{fmt(med(part, n, 'p50_ms'), 2):>7} {fmt(med(part, n, 'p99_ms'), 2):>7} "
              f"{fmt(med(part, n, 'srv_cores'), 2):>9} {fmt(med(part, n, 'cli_cores'), 2):>9} {fmt(med(part, n, 'bg_cores'), 2):>5}  {errors(part, n)}")

if names("client"):
    print("Client: sequential keep-alive GETs, one connection (median of reps, min–max):")
    print(f"  {'client':<14} {'reps':>4} {'req/s':>24} {'client µs/req':>26} {'srv µs/req':>10} {'cli cores':>9} {'bg':>5}  errors")
    for n in names("client"):
        print(f"  {n:<14} {len(col('client', n, 'rps')):>4} {fmt(med('client', n, 'rps'), 0):>9} {rng('client', n, 'rps'):>14} "
              f"{fmt(med('client', n, 'cli_us_per_req'), 2):>9} {rng('client', n, 'cli_us_per_req', 2):>16} "
              f"{fmt(med('client', n, 'srv_us_per_req'), 2):>10} {fmt(med('client', n, 'cli_cores'), 2):>9} "
              f"{fmt(med('client', n, 'bg_cores'), 2):>5}  {errors('client', n)}")

if names("idle"):
    print("Idle keep-alive connections: server RSS (median of reps, min–max):")
    print(f"  {'server':<14} {'reps':>4} {'open':>6} {'RSS idle KiB':>12} {'RSS with KiB':>12} {'KiB/conn':>22}  errors")
    for n in names("idle"):
        print(f"  {n:<14} {len(col('idle', n, 'kib_per_conn')):>4} {fmt(med('idle', n, 'conns'), 0):>6} "
              f"{fmt(med('idle', n, 'rss_base_kib'), 0):>12} {fmt(med('idle', n, 'rss_conns_kib'), 0):>12} "
              f"{fmt(med('idle', n, 'kib_per_conn'), 2):>7} {rng('idle', n, 'kib_per_conn', 2):>14}  {errors('idle', n)}")

scale = [n for n in dict.fromkeys(names("scale-x1") + names("scale-x2"))]
if scale:
    print("Scale-out: 1 and 2 processes on one port (SO_REUSEPORT), wrk -t2 (median of reps):")
    print(f"  {'server':<14} {'x1 req/s':>10} {'x2 req/s':>10} {'x2 ÷ x1':>7} {'srv cores x1':>12} {'x2':>5} {'x2 split':>10}  errors")
    for n in scale:
        a, b = med("scale-x1", n, "rps"), med("scale-x2", n, "rps")
        splits = [r["split"] for r in by.get(("scale-x2", n), []) if r["split"] not in ("", "NA")]
        errs = ",".join(sorted({r["errors"] for p in ("scale-x1", "scale-x2") for r in by.get((p, n), [])}))
        print(f"  {n:<14} {fmt(a, 0):>10} {fmt(b, 0):>10} {fmt(b / a if a and b else None, 2):>7} "
              f"{fmt(med('scale-x1', n, 'srv_cores'), 2):>12} {fmt(med('scale-x2', n, 'srv_cores'), 2):>5} "
              f"{(splits[len(splits) // 2] if splits else '—'):>10}  {errs}")

# (label, (part, name) A, (part, name) B, metric, how, op, target): how = "ratio" (A ÷ B) or "diff" (A − B)
T = []
for j in ("luajit", "5.4"):
    T += [
        (f"h1 net-{j} srv µs/req ÷ nginx-lua", ("h1", f"net-{j}"), ("h1", "nginx-lua"), "srv_us_per_req", "ratio", "<=", 1.0),
        (f"h1 net-{j} req/s ÷ nginx-static", ("h1", f"net-{j}"), ("h1", "nginx-static"), "rps", "ratio", ">=", 0.9),
        (f"h1 router-{j} ÷ net-{j} srv µs/req", ("h1", f"router-{j}"), ("h1", f"net-{j}"), "srv_us_per_req", "ratio", "<=", 1.3),
        (f"h2 net-{j} srv µs/req ÷ nginx-lua", ("h2", f"net-{j}"), ("h2", "nginx-lua"), "srv_us_per_req", "ratio", "<=", 0.6),
        (f"client net-{j} − wrk, client µs/req", ("client", f"net-{j}"), ("client", "wrk"), "cli_us_per_req", "diff", "<=", 10.0),
    ]
for j in ("luajit", "5.4"):  # informative, no target
    T += [
        (f"h1 net-{j} srv µs/req ÷ hyper", ("h1", f"net-{j}"), ("h1", "hyper"), "srv_us_per_req", "ratio", None, None),
        (f"h1 net-{j} req/s ÷ lua-http-5.4", ("h1", f"net-{j}"), ("h1", "lua-http-5.4"), "rps", "ratio", None, None),
        (f"h2 net-{j} srv µs/req ÷ hyper", ("h2", f"net-{j}"), ("h2", "hyper"), "srv_us_per_req", "ratio", None, None),
        (f"client net-{j} ÷ luasocket-5.4 µs/req", ("client", f"net-{j}"), ("client", "luasocket-5.4"), "cli_us_per_req", "ratio", None, None),
        (f"idle net-{j} KiB/conn ÷ nginx-static", ("idle", f"net-{j}"), ("idle", "nginx-static"), "kib_per_conn", "ratio", None, None),
    ]
T += [("h1 nginx-lua ÷ nginx-static srv µs/req", ("h1", "nginx-lua"), ("h1", "nginx-static"), "srv_us_per_req", "ratio", None, None)]
for n in scale:
    T.append((f"scale {n} req/s x2 ÷ x1", ("scale-x2", n), ("scale-x1", n), "rps", "ratio", None, None))

print("Ratios (ratio of the medians [median of per-rep ratios, reps paired as interleaved]; diff: of medians [paired]):")
for label, a, b, key, how, op, tgt in T:
    if a not in by:  # not selected in this run
        continue
    ma, mb = med(*a, key), med(*b, key)
    if ma is None or mb is None or (how == "ratio" and mb == 0):
        if op:
            print(f"  {label:<40} {'n/a':>7}   target {op} {tgt}  (not measured)")
        continue
    pa, pb = perrep(*a, key), perrep(*b, key)
    if how == "ratio":
        v = ma / mb
        paired = [pa[k] / pb[k] for k in pa if k in pb and pb[k]]
        pr = f"[{statistics.median(paired):.2f}]" if paired else ""
    else:
        v = ma - mb
        paired = [pa[k] - pb[k] for k in pa if k in pb]
        pr = f"[{statistics.median(paired):.1f}]" if paired else ""
    if op:
        ok = v <= tgt if op == "<=" else v >= tgt
        verdict = f"target {op} {tgt}  {'MET' if ok else 'MISSED'}"
    else:
        verdict = "(info)"
    print(f"  {label:<40} {v:7.2f} {pr:>8}  {verdict}")
print(f"TSV: {sys.argv[1]}")
