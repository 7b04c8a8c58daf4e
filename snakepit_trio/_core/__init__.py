"""Sans-I/O decision logic: pure, synchronous, imports nothing async (a test enforces it)."""
