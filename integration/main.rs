//! Integration tests: placeholder, filled in next.
