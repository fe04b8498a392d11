"""Run every benchmark module in bench/, or the one named first: ``python -m bench [NAME] …``.

Modules are found, not listed, so a new ``bench/<name>.py`` with a ``main(argv)`` joins in
without touching this file. Arguments after NAME go to that benchmark.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Sequence

import bench


def available() -> list[str]:
    return sorted(
        module.name
        for module in pkgutil.iter_modules(bench.__path__)
        if not module.name.startswith("_")
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    names = available()
    if args and not args[0].startswith("-"):
        name, args = args[0], args[1:]
        if name not in names:
            print(f"no benchmark {name!r}; available: {', '.join(names)}", file=sys.stderr)
            return 2
        names = [name]
    elif args:
        print("options belong to one benchmark: python -m bench NAME [OPTIONS]", file=sys.stderr)
        return 2
    worst = 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        entry = getattr(module, "main", None)
        if entry is None:
            continue
        print(f"== bench.{name}", flush=True)
        worst = max(worst, int(entry(args) or 0))
    return worst


if __name__ == "__main__":
    sys.exit(main())
