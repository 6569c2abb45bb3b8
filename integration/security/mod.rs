//! Attacks from every container-escape class that hit runc, crun or youki, each of which
//! must fail against skiff. One file per class; each names the CVE it reproduces.

mod binary;
mod fds;
