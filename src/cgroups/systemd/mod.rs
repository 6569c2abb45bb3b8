//! The systemd cgroup driver (`--systemd-cgroup`): which unit a container gets (`unit`), the
//! unit properties for its limits (`properties`), systemd's manager (`manager`) and the
//! minimal D-Bus client it talks through (`bus`, `wire`).

pub mod bus;
pub mod manager;
pub mod properties;
pub mod unit;
pub mod wire;
