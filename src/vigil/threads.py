"""How many threads one inference may use, for processes that get their parallelism from
running many tasks (streams, workers) rather than from each task."""

from __future__ import annotations


def limit_threads(threads: int) -> None:
    """Cap torch's threads and the BLAS libraries loaded so far (numpy's and scipy's OpenBLAS).

    Process-wide. OpenBLAS keeps a worker per core spinning after every call: with four live
    streams that spin took a quarter of the process's CPU, and two posts workers on two cores,
    each with its own spinning pool, ran slower together than one alone (bench/RESULTS.md).
    """
    try:
        import torch
    except ImportError:
        pass  # without the embed extra there is no torch to limit
    else:
        torch.set_num_threads(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")
