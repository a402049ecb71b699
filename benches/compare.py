#!/usr/bin/env python3
"""Side-by-side table: procession (benches/report/) vs Python multiprocessing
(../shared/bench/mp_baseline.py).

    python3 ../shared/bench/mp_baseline.py > /tmp/py.jsonl
    cargo bench --bench report > /tmp/pr.jsonl
    python3 benches/compare.py /tmp/py.jsonl /tmp/pr.jsonl

Prints a markdown table: figure | target | procession | Python | ratio. Rows are
procession's records, in the order it wrote them; a record's "py_id" names the Python
record measuring the same work ("py_also": more Python records shown in extra rows).
The ratio is oriented so that > 1 means procession is better: Python / procession for
times and memory, procession / Python for rates.
"""

import json
import sys

# Targets from the issue, keyed by procession id: (text, predicate on the value).
TARGETS = {
    "spawn.forkserver.first_reply": ("p50 ≤ 500 µs", lambda v: v <= 500),
    "ask_rtt.bytes16": ("p50 ≤ 15 µs", lambda v: v <= 15),
    "tell.tuple.1sender": ("≥ 2,000,000 msg/s", lambda v: v >= 2e6),
    "tell.u64.1sender": ("≥ 2,000,000 msg/s", lambda v: v >= 2e6),
    "bytes.16MiB": ("≥ 3,000 MB/s", lambda v: v >= 3000),
    "mem.idle_actor.pss": ("≤ 2,048 KiB", lambda v: v <= 2048),
    "restart.sigkill_to_next_reply": ("p50 ≤ 2 ms", lambda v: v <= 2000),  # value in µs
    # issue 4: the multiprocessing toolbox
    "lock.uncontended_1proc": ("≥ 100M pairs/s", lambda v: v >= 100e6),
    "shm.value_incr_2proc": ("≥ 10M incr/s", lambda v: v >= 10e6),
    "manager.dict_set": ("≥ 500k ops/s", lambda v: v >= 500e3),
    "manager.dict_get": ("≥ 500k ops/s", lambda v: v >= 500e3),
    "throughput.queue.tuple": ("≥ 2M msg/s", lambda v: v >= 2e6),
    "throughput.queue.bytes64": ("≥ 2M msg/s", lambda v: v >= 2e6),
    "pool.map.chunksize_1": ("≥ 500k tasks/s", lambda v: v >= 500e3),
    "fanout.16x10000": ("≥ 600k round trips/s", lambda v: v >= 600e3),
}

# Targets relative to the Python figure named by the record's "py_id", keyed by
# procession id: (text, predicate on (procession value, Python value)).
PY_TARGETS = {
    "pool.map.chunksize_default": ("≥ Python", lambda v, p: v >= p),
}

LABELS = {
    "spawn.forkserver.first_reply": "spawn → first reply, forkserver",
    "spawn.spawn.first_reply": "spawn → first reply, spawn",
    "spawn.fork.first_reply": "spawn → first reply, fork",
    "ask_rtt.bytes16": "ask RTT, 16 B (default spin)",
    "ask_rtt.bytes16_nospin": "ask RTT, 16 B (PROCESSION_SPIN_US=0)",
    "ask_rtt.bytes16_busy_cpus": "ask RTT, 16 B, all CPUs kept busy",
    "tell.u64.1sender": "tell u64, 1 sender",
    "tell.u64.4senders": "tell u64, 4 senders",
    "tell.tuple.1sender": "tell (i, \"hello\"), 1 sender",
    "tell.tuple.4senders": "tell (i, \"hello\"), 4 senders",
    "tell.bytes64.1sender": "tell 64 B, 1 sender",
    "tell.bytes64.4senders": "tell 64 B, 4 senders",
    "bytes.1MiB": "1 MiB messages",
    "bytes.16MiB": "16 MiB messages",
    "mem.idle_actor.pss": "PSS per idle actor",
    "mem.idle_actor.rss": "RSS per idle actor",
    "restart.sigkill_to_next_reply": "restart: SIGKILL → next reply (supervised, no Python equivalent)",
    "lock.uncontended_1proc": "Lock acquire+release, 1 process",
    "lock.contended_2proc": "Lock acquire+release, 2 processes contending",
    "shm.value_incr_2proc": "Value += 1 under its lock, 2 processes",
    "shm.value_fetch_add_2proc": "Value fetch_add(1), 2 processes (lock-free; Python has none)",
    "lock.contended_2proc_pinned": "Lock, 2 processes contending, pinned to 2 CPUs (diagnostic)",
    "shm.value_incr_2proc_pinned": "Value += 1 under its lock, 2 processes pinned to 2 CPUs (diagnostic)",
    "manager.dict_set": "Manager map set, from a child",
    "manager.dict_get": "Manager map get, from a child",
    "manager.list_append": "Manager list append, from a child",
    "manager.dict_set_pinned": "Manager map set, server and child pinned to 2 CPUs (diagnostic)",
    "manager.dict_get_pinned": "Manager map get, server and child pinned to 2 CPUs (diagnostic)",
    "manager.list_append_pinned": "Manager list append, pinned to 2 CPUs (diagnostic)",
    "throughput.queue.tuple": "Queue one way, (i, \"hello\")",
    "throughput.queue.bytes64": "Queue one way, 64 B",
    "throughput.simplequeue.tuple": "SimpleQueue one way, (i, \"hello\")",
    "throughput.simplequeue.bytes64": "SimpleQueue one way, 64 B",
    "pool.map.chunksize_1": "Pool(2).map 100k trivial tasks, chunksize 1",
    "pool.map.chunksize_default": "Pool(2).map 100k trivial tasks, default chunking",
    "fanout.16x10000": "fan-out 16 × 10k, one duplex pipe per worker",
    "fanout.16x10000.ask": "fan-out 16 × 10k, sequential asks (not overlapped)",
    "fanout.16x10000.tell_queue": "fan-out 16 × 10k, tells out + one reply Queue",
}

LOWER_IS_BETTER = {"us", "ms", "KiB"}


def load(path):
    recs = {}
    order = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue  # cargo's own lines, if any slipped in
            r = json.loads(line)
            if r["id"] not in recs:
                order.append(r["id"])
            recs[r["id"]] = r
    return recs, order


def fmt(x):
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return "{:,.0f}".format(x)
    if abs(x) >= 100:
        return "%.0f" % x
    if abs(x) >= 10:
        return "%.1f" % x
    return "%.2f" % x


def cell(rec):
    if rec is None:
        return "-"
    if "error" in rec and rec.get("value") is None:
        return "ERROR: " + rec["error"]
    s = "%s %s" % (fmt(rec.get("value")), rec.get("unit", ""))
    if rec.get("p99") is not None:
        s += " (p99 %s)" % fmt(rec["p99"])
    elif rec.get("p90") is not None:
        s += " (p90 %s)" % fmt(rec["p90"])
    if "error" in rec:
        s += " ERROR: " + rec["error"]
    return s


def ratio(pr, py):
    if not pr or not py or pr.get("value") is None or py.get("value") is None:
        return "-"
    if pr.get("unit") != py.get("unit"):
        return "units differ"
    a, b = float(pr["value"]), float(py["value"])
    if a == 0 or b == 0:
        return "-"
    r = b / a if pr["unit"] in LOWER_IS_BETTER else a / b
    return "%.2f×" % r


def target(pid, rec, py=None):
    if pid in PY_TARGETS:
        text, ok2 = PY_TARGETS[pid]
        other = py.get(rec.get("py_id")) if py and rec else None
        if rec is None or rec.get("value") is None or not other or other.get("value") is None:
            return text
        return "%s %s" % (text, "✅" if ok2(float(rec["value"]), float(other["value"])) else "❌")
    if pid not in TARGETS:
        return ""
    text, ok = TARGETS[pid]
    if rec is None or rec.get("value") is None:
        return text
    return "%s %s" % (text, "✅" if ok(float(rec["value"])) else "❌")


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: compare.py PY.jsonl PR.jsonl\n")
        return 2
    py, _ = load(argv[1])
    pr, order = load(argv[2])
    for name, recs in (("Python", py), ("procession", pr)):
        m, e = recs.get("meta", {}), recs.get("meta_end", {})
        sys.stdout.write("- %s run: loadavg %s → %s%s\n" % (
            name, m.get("loadavg_start"), e.get("loadavg_end"),
            "; CPU during run: %s" % e["cpu_pct_during_run"] if "cpu_pct_during_run" in e
            else ""))
    print()
    print("| figure | target | procession | Python | ratio (>1: procession better) |")
    print("|---|---|---|---|---|")
    for pid in order:
        if pid.startswith("meta"):
            continue
        rec = pr[pid]
        label = LABELS.get(pid, pid)
        py_ids = [rec["py_id"]] if rec.get("py_id") else []
        py_ids += rec.get("py_also", [])
        if not py_ids:
            print("| %s `%s` | %s | %s | - | - |" % (label, pid, target(pid, rec, py), cell(rec)))
            continue
        for k, qid in enumerate(py_ids):
            other = py.get(qid)
            first = k == 0
            print("| %s | %s | %s | `%s`: %s | %s |" % (
                "%s `%s`" % (label, pid) if first else "↳ same, vs",
                target(pid, rec, py) if first else "",
                cell(rec) if first else "",
                qid, cell(other), ratio(rec, other)))
    print()
    for pid in order:
        if not pid.startswith("meta") and "desc" in pr[pid]:
            print("- `%s`: %s" % (pid, pr[pid]["desc"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
