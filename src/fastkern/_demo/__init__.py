"""The workloads of ``python -m fastkern``: one module per topic, each with
``workload(quick) -> list[Row]`` (see fastkern._report), listed in
fastkern.__main__.DEMOS."""
