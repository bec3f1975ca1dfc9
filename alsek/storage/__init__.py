"""Storage layer: serialization and the Redis backends."""
