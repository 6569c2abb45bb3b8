//! Parsing a mount's `options` list into mount(2) flags, mount_setattr(2) attributes,
//! propagation changes and the filesystem-specific data string, as runc interprets them.

use nix::mount::MsFlags;

use crate::sys::mount as m;

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Flags for mount(2) of a new filesystem.
    pub flags: MsFlags,
    /// The same flags as mount_setattr(2) attributes, for bind mounts.
    pub attr_set: u64,
    pub attr_clr: u64,
    /// Attributes applied to the whole tree (`rro`, `rnosuid`, ...).
    pub rec_attr_set: u64,
    pub rec_attr_clr: u64,
    /// Propagation changes, applied after the mount exists.
    pub propagation: Vec<MsFlags>,
    pub bind: bool,
    pub recursive: bool,
    /// Options passed to the filesystem (`mode=755`, `size=65536k`, ...).
    pub data: Vec<String>,
    /// `idmap` or `ridmap` (the latter maps every mount of the tree).
    pub idmap: bool,
    pub idmap_recursive: bool,
    /// `tmpcopyup` (runc's extension, used by podman for `--tmpfs`): the new tmpfs starts
    /// with a copy of what the directory it covers holds. Never passed to the kernel.
    pub tmpcopyup: bool,
}

/// Every option name skiff interprets itself (the rest are passed to the filesystem as data),
/// as `features` reports them.
pub const KNOWN: &[&str] = &[
    "ratime",
    "rnoatime",
    "rnorelatime",
    "rnostrictatime",
    "rrelatime",
    "rstrictatime",
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

impl Default for Options {
    fn default() -> Self {
        Options {
            flags: MsFlags::empty(),
            attr_set: 0,
            attr_clr: 0,
            rec_attr_set: 0,
            rec_attr_clr: 0,
            propagation: Vec::new(),
            bind: false,
            recursive: false,
            data: Vec::new(),
            idmap: false,
            idmap_recursive: false,
            tmpcopyup: false,
        }
    }
}

impl Options {
    pub fn parse<S: AsRef<str>>(opts: &[S]) -> Options {
        let mut o = Options::default();
        let mut atime = false;
        for opt in opts {
            let opt = opt.as_ref();
            atime |= ATIME.contains(&opt);
            o.apply(opt);
        }
        if atime {
            o.atime_attr();
        }
        o
    }

    fn set(&mut self, flag: MsFlags, attr: u64) {
        self.flags |= flag;
        self.attr_set |= attr;
        self.attr_clr &= !attr;
    }

    fn clear(&mut self, flag: MsFlags, attr: u64) {
        self.flags &= !flag;
        self.attr_set &= !attr;
        self.attr_clr |= attr;
    }

    /// The atime options set and clear their own flag bits, as runc passes them to mount(2);
    /// the kernel then decides (strictatime beats noatime and relatime, noatime beats
    /// relatime), and a bind mount's mount_setattr gets that same single mode.
    fn atime_attr(&mut self) {
        let mode = if self.flags.contains(MsFlags::MS_STRICTATIME) {
            m::MOUNT_ATTR_STRICTATIME
        } else if self.flags.contains(MsFlags::MS_NOATIME) {
            m::MOUNT_ATTR_NOATIME
        } else {
            m::MOUNT_ATTR_RELATIME
        };
        self.attr_set = (self.attr_set & !m::MOUNT_ATTR__ATIME) | mode;
        self.attr_clr |= m::MOUNT_ATTR__ATIME;
    }

    fn rec_atime(&mut self, attr: u64) {
        self.rec_attr_set = (self.rec_attr_set & !m::MOUNT_ATTR__ATIME) | attr;
        self.rec_attr_clr |= m::MOUNT_ATTR__ATIME;
    }

    fn apply(&mut self, opt: &str) {
        use MsFlags as F;
        match opt {
            "ro" => self.set(F::MS_RDONLY, m::MOUNT_ATTR_RDONLY),
            "rw" => self.clear(F::MS_RDONLY, m::MOUNT_ATTR_RDONLY),
            "nosuid" => self.set(F::MS_NOSUID, m::MOUNT_ATTR_NOSUID),
            "suid" => self.clear(F::MS_NOSUID, m::MOUNT_ATTR_NOSUID),
            "nodev" => self.set(F::MS_NODEV, m::MOUNT_ATTR_NODEV),
            "dev" => self.clear(F::MS_NODEV, m::MOUNT_ATTR_NODEV),
            "noexec" => self.set(F::MS_NOEXEC, m::MOUNT_ATTR_NOEXEC),
            "exec" => self.clear(F::MS_NOEXEC, m::MOUNT_ATTR_NOEXEC),
            "nodiratime" => self.set(F::MS_NODIRATIME, m::MOUNT_ATTR_NODIRATIME),
            "diratime" => self.clear(F::MS_NODIRATIME, m::MOUNT_ATTR_NODIRATIME),
            "nosymfollow" => self.set(F::from_bits_retain(256), m::MOUNT_ATTR_NOSYMFOLLOW),
            "symfollow" => self.clear(F::from_bits_retain(256), m::MOUNT_ATTR_NOSYMFOLLOW),
            "noatime" => self.flags |= F::MS_NOATIME,
            "relatime" => self.flags |= F::MS_RELATIME,
            "strictatime" => self.flags |= F::MS_STRICTATIME,
            "atime" => self.flags &= !F::MS_NOATIME,
            "norelatime" => self.flags &= !F::MS_RELATIME,
            "nostrictatime" => self.flags &= !F::MS_STRICTATIME,
            "defaults" => {}
            "sync" => self.flags |= F::MS_SYNCHRONOUS,
            "async" => self.flags &= !F::MS_SYNCHRONOUS,
            "dirsync" => self.flags |= F::MS_DIRSYNC,
            "mand" => self.flags |= F::MS_MANDLOCK,
            "nomand" => self.flags &= !F::MS_MANDLOCK,
            "silent" => self.flags |= F::MS_SILENT,
            "loud" => self.flags &= !F::MS_SILENT,
            "lazytime" => self.flags |= F::MS_LAZYTIME,
            "nolazytime" => self.flags &= !F::MS_LAZYTIME,
            "remount" => self.flags |= F::MS_REMOUNT,
            "bind" => self.bind = true,
            "rbind" => {
                self.bind = true;
                self.recursive = true;
            }
            "private" => self.propagation.push(F::MS_PRIVATE),
            "rprivate" => self.propagation.push(F::MS_PRIVATE | F::MS_REC),
            "shared" => self.propagation.push(F::MS_SHARED),
            "rshared" => self.propagation.push(F::MS_SHARED | F::MS_REC),
            "slave" => self.propagation.push(F::MS_SLAVE),
            "rslave" => self.propagation.push(F::MS_SLAVE | F::MS_REC),
            "unbindable" => self.propagation.push(F::MS_UNBINDABLE),
            "runbindable" => self.propagation.push(F::MS_UNBINDABLE | F::MS_REC),
            "idmap" => {
                self.idmap = true;
                self.idmap_recursive = false;
            }
            "ridmap" => {
                self.idmap = true;
                self.idmap_recursive = true;
            }
            "tmpcopyup" => self.tmpcopyup = true,
            // The atime mode is one value, not a flag: setting it also clears the field.
            "rnoatime" => self.rec_atime(m::MOUNT_ATTR_NOATIME),
            "rstrictatime" => self.rec_atime(m::MOUNT_ATTR_STRICTATIME),
            "rrelatime" | "ratime" | "rnorelatime" | "rnostrictatime" => {
                self.rec_atime(m::MOUNT_ATTR_RELATIME)
            }
            other => {
                if let Some(attr) = recursive_attr(other) {
                    match attr {
                        (true, a) => {
                            self.rec_attr_set |= a;
                            self.rec_attr_clr &= !a;
                        }
                        (false, a) => {
                            self.rec_attr_clr |= a;
                            self.rec_attr_set &= !a;
                        }
                    }
                } else {
                    self.data.push(other.to_string());
                }
            }
        }
    }
}

/// The options that decide a mount's atime mode.
const ATIME: &[&str] = &[
    "noatime",
    "relatime",
    "strictatime",
    "atime",
    "norelatime",
    "nostrictatime",
];

/// The recursive (`r`-prefixed) attribute options of runtime-spec 1.1: (set?, attribute).
fn recursive_attr(opt: &str) -> Option<(bool, u64)> {
    Some(match opt {
        "rro" => (true, m::MOUNT_ATTR_RDONLY),
        "rrw" => (false, m::MOUNT_ATTR_RDONLY),
        "rnosuid" => (true, m::MOUNT_ATTR_NOSUID),
        "rsuid" => (false, m::MOUNT_ATTR_NOSUID),
        "rnodev" => (true, m::MOUNT_ATTR_NODEV),
        "rdev" => (false, m::MOUNT_ATTR_NODEV),
        "rnoexec" => (true, m::MOUNT_ATTR_NOEXEC),
        "rexec" => (false, m::MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (true, m::MOUNT_ATTR_NODIRATIME),
        "rdiratime" => (false, m::MOUNT_ATTR_NODIRATIME),
        "rnosymfollow" => (true, m::MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => (false, m::MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_option_is_interpreted_not_passed_as_data() {
        for opt in KNOWN {
            assert!(
                Options::parse(&[opt]).data.is_empty(),
                "{opt} fell through to data"
            );
        }
    }

    #[test]
    fn runc_default_tmpfs_dev() {
        let o = Options::parse(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert!(o
            .flags
            .contains(MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME));
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        assert!(!o.bind);
    }

    #[test]
    fn rbind_ro_is_bind_recursive_readonly_top() {
        let o = Options::parse(&["rbind", "ro", "rprivate"]);
        assert!(o.bind && o.recursive);
        assert_eq!(o.attr_set, m::MOUNT_ATTR_RDONLY);
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
    }

    #[test]
    fn later_option_wins() {
        let o = Options::parse(&["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert_eq!(o.attr_set & m::MOUNT_ATTR_RDONLY, 0);
    }

    /// The kernel's rule, which runc's flag bits end up in: strictatime beats noatime and
    /// relatime whatever the order; `atime` clears only noatime.
    #[test]
    fn atime_options_combine_as_the_kernel_combines_them() {
        let mode = |opts: &[&str]| Options::parse(opts).attr_set & m::MOUNT_ATTR__ATIME;
        assert_eq!(mode(&["strictatime", "noatime"]), m::MOUNT_ATTR_STRICTATIME);
        assert_eq!(mode(&["noatime", "strictatime"]), m::MOUNT_ATTR_STRICTATIME);
        assert_eq!(mode(&["noatime", "relatime"]), m::MOUNT_ATTR_NOATIME);
        assert_eq!(mode(&["noatime", "atime"]), m::MOUNT_ATTR_RELATIME);
        assert_eq!(
            mode(&["strictatime", "nostrictatime", "noatime"]),
            m::MOUNT_ATTR_NOATIME
        );
        let o = Options::parse(&["strictatime", "noatime"]);
        assert!(o
            .flags
            .contains(MsFlags::MS_STRICTATIME | MsFlags::MS_NOATIME));
        assert_eq!(Options::parse(&["ro"]).attr_clr & m::MOUNT_ATTR__ATIME, 0);
    }

    #[test]
    fn tmpcopyup_is_ours_not_the_kernels() {
        let o = Options::parse(&["tmpcopyup", "size=1m"]);
        assert!(o.tmpcopyup);
        assert_eq!(o.data, vec!["size=1m"]);
    }

    #[test]
    fn recursive_attrs_are_separate() {
        let o = Options::parse(&["rro", "rnosuid"]);
        assert_eq!(o.rec_attr_set, m::MOUNT_ATTR_RDONLY | m::MOUNT_ATTR_NOSUID);
        assert!(o.data.is_empty());
    }
}
