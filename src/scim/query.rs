//! SCIM filter AST to storage-neutral conditions (placeholder; being written).
