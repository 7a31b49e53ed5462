//! Shared helpers for the criterion suites in `benches/benches/`.
