//! The systemd cgroup driver's plumbing: a minimal D-Bus client (`bus`, `wire`) for
//! systemd's manager.

pub mod bus;
pub mod wire;
