"""Worker side of the Arrow example: tools that take and return pyarrow tables."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from snakepit_trio.worker import Adapter, tool


class Sales(Adapter):
    @tool(description="Total amount per region")
    def totals(self, sales: pa.Table) -> pa.Table:
        # `sales` arrived as a pa.Table whose buffers view the received bytes: no copy.
        return sales.group_by("region").aggregate([("amount", "sum")]).sort_by("region")

    @tool(description="Multiply every amount by a factor")
    def scale(self, sales: pa.Table, factor: float) -> pa.Table:
        # The other columns go back as they came (the new table shares their buffers).
        index = sales.schema.get_field_index("amount")
        return sales.set_column(index, "amount", pc.multiply(sales["amount"], factor))

    @tool(description="How many amounts fall in each of `bins` equal ranges")
    def histogram(self, sales: pa.Table, bins: int) -> np.ndarray:
        counts, _ = np.histogram(sales["amount"].to_numpy(), bins=bins)
        return counts
