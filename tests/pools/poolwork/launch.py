"""Start a pool over ``poolwork.cli`` with options the CLI does not offer (``lease_ttl``).

    python -m poolwork.launch --capacity 1 --lease-ttl 1000 [--start-method spawn]

The pool kind is ``ALSEK_POOLS_KIND``, as for ``poolwork.cli``; ``--start-method`` sets how
``multiprocessing`` starts the pool's processes (the platform's default otherwise).
"""

from __future__ import annotations

import argparse
import multiprocessing

from poolwork import cli, pools


def main() -> None:
    """Build the pool from the command line and run it until a stop signal."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--capacity", type=int, default=1)
    parser.add_argument("--lease-ttl", type=int, default=30_000)
    parser.add_argument("--grace-period", type=int, default=2_000)
    parser.add_argument("--start-method", choices=multiprocessing.get_all_start_methods())
    args = parser.parse_args()
    if args.start_method:
        multiprocessing.set_start_method(args.start_method)
    pools.serve(
        cli.KIND,
        list(cli.TASKS.values()),
        args.capacity,
        lease_ttl=args.lease_ttl,
        grace_period=args.grace_period,
    )


if __name__ == "__main__":
    main()
