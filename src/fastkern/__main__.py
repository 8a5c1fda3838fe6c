"""``python -m fastkern``: the build's configuration, then every kernel on a built-in
workload against the reference a user would otherwise run, as a table.

Options: ``--quick`` (smaller workloads, under 20 s), ``--only NAME`` (one topic).
"""
import argparse
import importlib
import json
import sys

from ._config import show_config

# one module per topic, fastkern._demo.<topic>, each with workload(quick) -> list[Row];
# a new topic is a file there and its name here
DEMOS = ["convolve", "bootstrap", "permutation", "gibbs", "attention", "locate"]


def _fmt_time(t):
    return f"{t * 1e3:9.1f} ms" if t < 10 else f"{t:9.2f} s "


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastkern", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small workloads (under 20 s)")
    parser.add_argument("--only", choices=DEMOS, help="run one topic only")
    args = parser.parse_args(argv)

    config = show_config(mode="dicts")
    print("fastkern configuration")
    print(json.dumps(config, indent=2))
    print()

    header = (f"{'kernel':<18} {'workload':<44} {'reference':<32} {'reference':>12} "
              f"{'1 thread':>12} {'all threads':>12} {'speed-up':>9} {'threads x':>9} "
              f"{'max diff':>10}")
    print(header)
    print("-" * len(header))
    failed = False
    for topic in DEMOS if args.only is None else [args.only]:
        try:
            module = importlib.import_module(f"fastkern._demo.{topic}")
            rows = module.workload(quick=args.quick)
        except Exception as exc:  # one broken topic must not hide the others
            failed = True
            print(f"{topic:<18} FAILED: {type(exc).__name__}: {exc}")
            continue
        for r in rows:
            print(f"{r.kernel:<18} {r.workload:<44.44} {r.reference:<32.32} {_fmt_time(r.t_ref)} "
                  f"{_fmt_time(r.t_one)} {_fmt_time(r.t_all)} {r.t_ref / r.t_all:8.1f}x "
                  f"{r.t_one / r.t_all:8.2f}x {r.max_diff:10.2e}")
            sys.stdout.flush()
    print()
    print("speed-up: reference time / fastkern time with all threads; "
          "threads x: 1-thread time / all-threads time; times are the best of a few runs.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
