//! Storage-neutral queries (placeholder; being written).
