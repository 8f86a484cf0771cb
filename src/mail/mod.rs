//! Mail (placeholder; being written).
