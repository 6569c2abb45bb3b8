//! skiff's integration tests: the real binary, as root, on busybox bundles, asserting what
//! the kernel shows (namespace inodes, mount table, cgroup files, capability masks...).
//! Every test uses its own state root under /run/skiff-test and checks on drop that nothing
//! (state directory, cgroup, mount) is left behind.

mod common;

mod cgroups;
mod cli;
mod crash;
mod criu;
mod errors;
mod exec;
mod fields;
mod fuzz;
mod guest;
mod hooks;
mod isolation;
mod lifecycle;
mod limits;
mod man;
mod namespaces;
mod process;
mod propagation;
mod rootfs;
mod rootless;
mod rootless_crash;
mod runc_behaviour;
mod runc_compat;
mod runc_rootfs;
mod seccomp;
mod seccomp_notify;
mod seccomp_runtime;
mod seccomp_semantics;
mod security;
mod tty;
