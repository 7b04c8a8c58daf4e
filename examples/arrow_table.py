"""Arrow tables as arguments and results (pip install snakepit_trio[arrow]).

A table goes to a worker and comes back as a pyarrow.Table. Small tables travel in the
message; large ones through shared memory, written once and read in place on the other side.
Arrays arrive read-only; snakepit_trio.writable gives a copy to write into.

Run from the repository root:  python examples/arrow_table.py
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import trio

import snakepit_trio as sp


async def main() -> None:
    sales = pa.table(
        {
            "region": ["north", "south", "north", "east", "south"],
            "amount": [120.0, 80.5, 33.0, 42.0, 19.5],
        }
    )
    async with sp.open_pool("arrow_adapter:Sales", size=1) as pool:
        totals = await pool.execute("totals", {"sales": sales})
        print("totals by region:", totals.to_pydict())

        # 2 million rows (about 23 MB): through a shared-memory segment, both ways.
        rng = np.random.default_rng(0)
        n = 2_000_000
        big = pa.table(
            {
                "region": pa.array(rng.choice(["north", "south", "east"], n)).dictionary_encode(),
                "amount": rng.uniform(0, 100, n),
            }
        )
        scaled = await pool.execute("scale", {"sales": big, "factor": 2.0})
        doubled = scaled["amount"].to_numpy()
        same = bool(np.allclose(doubled, 2 * big["amount"].to_numpy()))
        print(f"scaled {scaled.num_rows:,} rows ({big.nbytes / 2**20:.0f} MB): all doubled: {same}")

        counts = await pool.execute("histogram", {"sales": big, "bins": 4})
        print(f"histogram: {len(counts)} bins, {counts.sum():,} amounts;", end=" ")
        print("writeable:", counts.flags.writeable)
        counts = sp.writable(counts)  # a copy: the received array views the message
        counts[0] = 0
        print("after writing into the copy:", counts.tolist()[:1])


if __name__ == "__main__":
    trio.run(main)
