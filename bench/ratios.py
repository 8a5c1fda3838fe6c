"""Speed-ups from a pytest-benchmark JSON file: each group's medians against the
benchmark in it whose name contains "reference" (or the slowest one).

    python -m pytest bench/ --benchmark-only --benchmark-json=bench.json
    python bench/ratios.py bench.json
"""
import collections
import json
import sys


def main(path):
    with open(path) as f:
        data = json.load(f)
    groups = collections.defaultdict(list)
    for b in data["benchmarks"]:
        key = (b["group"] or "") + (f" [{b['param']}]" if b.get("param") else "")
        groups[key].append((b["name"].split("[")[0], b["stats"]["median"]))
    for group, rows in sorted(groups.items()):
        refs = [r for r in rows if "reference" in r[0]] or [max(rows, key=lambda r: r[1])]
        ref_name, ref_t = refs[0]
        print(f"\n{group}  (against {ref_name})")
        for name, t in sorted(rows, key=lambda r: r[1]):
            print(f"  {name:<60} {t * 1e3:10.2f} ms  {ref_t / t:8.2f}x")


if __name__ == "__main__":
    main(sys.argv[1])
