//! Mail transport tests (placeholder; being written).
