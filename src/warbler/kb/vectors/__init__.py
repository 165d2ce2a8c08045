"""Dense (vector) search over knowledge-base chunks: exact in memory, or pgvector."""
