//! Byte layout of headers, frames and records (see FORMAT.md).
