//! Shared code of the imp2 tools.
