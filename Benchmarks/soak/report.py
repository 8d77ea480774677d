#!/usr/bin/env python3
"""Markdown tables of a soak run from its --json file (docs/soak.md's figures are made with it).

usage: Benchmarks/soak/report.py SOAK.json [EVERY_SECONDS]   (a row every EVERY_SECONDS of the run, default 120)
"""

import json
import sys


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        run = json.load(f)
    every = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0

    def mib(kib):
        return "-" if kib is None else f"{kib / 1024:.1f}"

    def spool(n):
        return f"{n / 1048576:.1f}"

    def cell(row, key):
        return "-" if row[key] is None else str(row[key])

    print(
        "| t (s) | sent | `extra` route | edge RSS MiB | edge fds | edge threads (own+dispatch) | edge spool MiB "
        "| aggregator RSS MiB | aggregator fds | aggregator threads | aggregator spool MiB | events since the previous row |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    samples = run["samples"]
    events = []
    next_t = 0.0
    for index, row in enumerate(samples):
        events += row["events"]
        if row["t"] + 0.5 < next_t and index != len(samples) - 1:
            continue
        next_t = row["t"] + every - 0.5
        cells = []
        for name in ("edge", "aggregator"):
            ferry = row[name]
            threads = "-" if ferry["threads"] is None else f"{ferry['threads']}+{ferry['dispatch_threads']}"
            rss = mib(ferry["rss_kib"]) + (" (frozen)" if ferry["state"] == "frozen" else "")
            cells += [rss, cell(ferry, "fds"), threads, spool(ferry["spool_bytes"])]
        counted = {}
        for event in events:
            counted[event] = counted.get(event, 0) + 1
        summary = ", ".join(f"{event} ×{count}" if count > 1 else event for event, count in counted.items())
        variant = "with" if row["variant"] else "without"
        print(f"| {row['t']:.0f} | {row['sent']:,} | {variant} | " + " | ".join(cells) + f" | {summary} |")
        events = []

    print()
    print("| Ferry | figure | first third | middle third | last third | last / middle | slope per minute (whole run) | slope per minute (last two thirds) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    labels = {
        "rss_kib": ("RSS (mean, MiB)", 1024),
        "fds": ("descriptors (mode)", 1),
        "deleted_fds": ("descriptors of deleted files (mode)", 1),
        "threads": ("own threads (mode)", 1),
        "dispatch_threads": ("libdispatch workers (mode)", 1),
        "spool_bytes": ("spool (mean, MiB)", 1048576),
    }
    for name in ("edge", "aggregator"):
        for key, (label, scale) in labels.items():
            figure = run["trend"][name][key]

            def show(x, scale=scale):
                if x is None:
                    return "-"
                return f"{x / scale:.1f}" if scale != 1 else f"{x:g}"

            ratio = figure["last_over_middle"]
            slopes = [figure["slope_per_minute"], figure["slope_per_minute_last_two_thirds"]]
            slope_cells = ["-" if s is None else f"{s / scale:+.3f}" for s in slopes]
            print(
                f"| {name} | {label} | {show(figure['first'])} | {show(figure['middle'])} | {show(figure['last'])} | "
                f"{'-' if ratio is None else f'{ratio:.3f}'} | {slope_cells[0]} | {slope_cells[1]} |"
            )

    # The aggregator is restarted at each kill: its RSS per lifetime (a leak inside one shows as a rising peak).
    lifetimes = {}
    for row in samples:
        ferry = row["aggregator"]
        if ferry["rss_kib"] is not None:
            lifetimes.setdefault(ferry["starts"], []).append((row["t"], ferry["rss_kib"]))
    if len(lifetimes) > 1:
        print()
        print("| aggregator lifetime | samples from – to (s) | RSS at its first sample (MiB) | peak RSS (MiB) | RSS at its last sample (MiB) |")
        print("|---:|---|---:|---:|---:|")
        for start, points in sorted(lifetimes.items()):
            print(
                f"| {start} | {points[0][0]:.0f} – {points[-1][0]:.0f} | {points[0][1] / 1024:.1f} | "
                f"{max(p[1] for p in points) / 1024:.1f} | {points[-1][1] / 1024:.1f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
