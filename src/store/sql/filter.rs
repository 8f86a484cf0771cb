//! Filter compilation to SQL (placeholder; being written).
