//! Test SMTP server (placeholder; being written).
