"""URL block-list filtering: agreement with a naive reference (a host is blocked when it is a
listed domain or ends with "." + one) on seeded URLs that include subdomains of listed domains
and look-alike hosts (``bad<domain>``, ``<domain>.evil.org``, another TLD), then lookups per
second against a large list (a figure of this loaded machine: read it as an order of magnitude).

    python benchmarks/bench_data_urlfilter.py [--domains 500] [--urls 5000] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import string
import time
from urllib.parse import urlsplit

from l3_data.steps.url_filter import BlockList


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 10)))


def _urls(domains: list[str], n: int, rng: random.Random) -> list[str]:
    out = []
    for _ in range(n):
        d = rng.choice(domains)
        host = rng.choice(
            [
                d,
                f"www.{d}",
                f"{_name(rng)}.{_name(rng)}.{d}",
                f"bad{d}",
                f"{d}.evil.org",
                d.rsplit(".", 1)[0] + ".net",
                f"{_name(rng)}.com",
            ]
        )
        scheme = rng.choice(["http://", "https://", "HTTPS://"])
        out.append(f"{scheme}{host.upper() if rng.random() < 0.1 else host}/{_name(rng)}?q=1")
    return out


def naive_blocked(url: str, domains: list[str]) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host == d or host.endswith("." + d) for d in domains)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=500)
    ap.add_argument("--urls", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    domains = sorted(
        {f"{_name(rng)}.{rng.choice(['com', 'org', 'io', 'co.uk'])}" for _ in range(args.domains)}
    )
    bl = BlockList()
    for i, d in enumerate(domains, 1):
        bl.add(d, f"list:{i}")
    urls = _urls(domains, args.urls, rng)
    ours = [bl.match(u) is not None for u in urls]
    ref = [naive_blocked(u, domains) for u in urls]
    agree = sum(a == b for a, b in zip(ours, ref))
    print(
        f"agreement with the naive reference: {agree} of {len(urls)} URLs "
        f"({sum(ref)} blocked, {len(urls) - sum(ref)} look-alikes and others kept)"
    )
    big = BlockList()
    for i in range(200_000):
        big.add(f"{_name(rng)}{i}.com", f"big:{i}")
    many = _urls(domains, 50_000, rng)
    t0 = time.perf_counter()
    for u in many:
        big.match(u)
    secs = time.perf_counter() - t0
    print(f"lookups against 200,000 domains: {len(many) / secs:,.0f} URLs/s")


if __name__ == "__main__":
    main()
