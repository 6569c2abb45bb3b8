//! CRIU's RPC messages (`criu_req`, `criu_opts`, `criu_resp` in CRIU's `images/rpc.proto`),
//! the fields skiff uses, with their field numbers.

use anyhow::{Context, Result};

use super::wire::{fields, Value, Writer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReqType {
    Dump = 1,
    Restore = 2,
    PreDump = 4,
    Notify = 6,
    FeatureCheck = 9,
    Version = 10,
}

impl ReqType {
    fn from_wire(v: i64) -> Option<ReqType> {
        Some(match v {
            1 => ReqType::Dump,
            2 => ReqType::Restore,
            4 => ReqType::PreDump,
            6 => ReqType::Notify,
            9 => ReqType::FeatureCheck,
            10 => ReqType::Version,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ReqType::Dump => "DUMP",
            ReqType::Restore => "RESTORE",
            ReqType::PreDump => "PRE_DUMP",
            ReqType::Notify => "NOTIFY",
            ReqType::FeatureCheck => "FEATURE_CHECK",
            ReqType::Version => "VERSION",
        }
    }
}

/// `criu_cg_mode`: how CRIU treats the cgroups of the tree (`--manage-cgroups-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CgMode {
    Ignore = 0,
    Soft = 3,
    Full = 4,
    Strict = 5,
    /// CRIU's own default (soft).
    #[default]
    Default = 6,
}

impl CgMode {
    /// runc's values for `--manage-cgroups-mode`.
    pub fn parse(s: &str) -> Result<CgMode> {
        Ok(match s {
            "" => CgMode::Default,
            "soft" => CgMode::Soft,
            "full" => CgMode::Full,
            "strict" => CgMode::Strict,
            "ignore" => CgMode::Ignore,
            _ => anyhow::bail!("Invalid manage-cgroups-mode value"),
        })
    }
}

/// `criu_opts`: what a dump or restore is asked to do. Fds are numbers in CRIU's fd table.
#[derive(Debug, Default, Clone)]
pub struct Opts {
    pub images_dir_fd: i32,
    pub pid: Option<i32>,
    pub leave_running: bool,
    pub ext_unix_sk: bool,
    pub tcp_established: bool,
    pub evasive_devices: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub log_level: i32,
    pub log_file: String,
    /// (address, port) of a page server that receives the memory pages.
    pub page_server: Option<(String, i32)>,
    pub notify_scripts: bool,
    pub root: Option<String>,
    pub parent_img: Option<String>,
    pub track_mem: bool,
    pub auto_dedup: bool,
    pub work_dir_fd: Option<i32>,
    /// (mount point in the container, what stands for it: a key at dump, a host path at
    /// restore)
    pub ext_mnt: Vec<(String, String)>,
    pub manage_cgroups: bool,
    /// (controller, path); cgroup v2 has one, with an empty controller name.
    pub cg_root: Vec<(String, String)>,
    pub rst_sibling: bool,
    /// (key, fd): a resource CRIU finds outside the dumped tree, by the key it was dumped as.
    pub inherit_fd: Vec<(String, i32)>,
    pub manage_cgroups_mode: CgMode,
    pub external: Vec<String>,
    pub empty_ns: u32,
    /// (namespace type, path): an existing namespace the restored tree joins.
    pub join_ns: Vec<(String, String)>,
    pub freeze_cgroup: Option<String>,
    pub lazy_pages: bool,
    pub status_fd: Option<i32>,
    pub orphan_pts_master: bool,
    pub config_file: Option<String>,
    /// The LSM label the restored tree runs with (`apparmor:NAME`, `selinux:LABEL`).
    pub lsm_profile: Option<String>,
    /// The SELinux context of the restored mounts.
    pub lsm_mount_context: Option<String>,
}

impl Opts {
    fn encode(&self) -> Writer {
        let mut w = Writer::default();
        w.int(1, self.images_dir_fd.into());
        if let Some(p) = self.pid {
            w.int(2, p.into());
        }
        w.bool(3, self.leave_running)
            .bool(4, self.ext_unix_sk)
            .bool(5, self.tcp_established)
            .bool(6, self.evasive_devices)
            .bool(7, self.shell_job)
            .bool(8, self.file_locks)
            .int(9, self.log_level.into())
            .string(10, &self.log_file);
        if let Some((address, port)) = &self.page_server {
            let mut m = Writer::default();
            m.string(1, address).int(2, (*port).into());
            w.message(11, m);
        }
        w.bool(12, self.notify_scripts);
        if let Some(r) = &self.root {
            w.string(13, r);
        }
        if let Some(p) = &self.parent_img {
            w.string(14, p);
        }
        w.bool(15, self.track_mem).bool(16, self.auto_dedup);
        if let Some(fd) = self.work_dir_fd {
            w.int(17, fd.into());
        }
        for (k, v) in &self.ext_mnt {
            let mut m = Writer::default();
            m.string(1, k).string(2, v);
            w.message(23, m);
        }
        w.bool(24, self.manage_cgroups);
        for (ctrl, path) in &self.cg_root {
            let mut m = Writer::default();
            m.string(1, ctrl).string(2, path);
            w.message(25, m);
        }
        w.bool(26, self.rst_sibling);
        for (k, fd) in &self.inherit_fd {
            let mut m = Writer::default();
            m.string(1, k).int(2, (*fd).into());
            w.message(27, m);
        }
        w.int(34, self.manage_cgroups_mode as i64);
        for e in &self.external {
            w.string(37, e);
        }
        w.int(38, self.empty_ns.into());
        for (ns, file) in &self.join_ns {
            let mut m = Writer::default();
            m.string(1, ns).string(2, file);
            w.message(39, m);
        }
        if let Some(f) = &self.freeze_cgroup {
            w.string(44, f);
        }
        w.bool(48, self.lazy_pages);
        if let Some(fd) = self.status_fd {
            w.int(49, fd.into());
        }
        w.bool(50, self.orphan_pts_master);
        if let Some(c) = &self.config_file {
            w.string(51, c);
        }
        if let Some(p) = &self.lsm_profile {
            w.string(53, p);
        }
        if let Some(c) = &self.lsm_mount_context {
            w.string(63, c);
        }
        w
    }
}

/// `criu_features`, asked for with FEATURE_CHECK.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    pub mem_track: bool,
    pub lazy_pages: bool,
}

/// A `criu_req`.
pub fn request(t: ReqType, opts: Option<&Opts>, features: Option<Features>) -> Vec<u8> {
    let mut w = Writer::default();
    w.int(1, t as i64);
    if let Some(o) = opts {
        w.message(2, o.encode());
    }
    if t == ReqType::Notify {
        w.bool(3, true);
    }
    if let Some(f) = features {
        let mut m = Writer::default();
        m.bool(1, f.mem_track).bool(2, f.lazy_pages);
        w.message(5, m);
    }
    w.into_bytes()
}

/// A `criu_resp`, the parts skiff reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Resp {
    pub typ: Option<ReqType>,
    pub success: bool,
    /// restore.pid: the restored tree's root.
    pub restored_pid: Option<i32>,
    /// notify: (script name, pid).
    pub notify: Option<(String, i32)>,
    pub cr_errno: Option<i32>,
    pub cr_errmsg: Option<String>,
    pub features: Option<Features>,
    /// version: major * 10000 + minor * 100 + sublevel, as runc compares it.
    pub version: Option<u32>,
}

impl Resp {
    pub fn decode(buf: &[u8]) -> Result<Resp> {
        let mut r = Resp::default();
        for (f, v) in fields(buf).context("decoding CRIU's response")? {
            match (f, v) {
                (1, v) => r.typ = ReqType::from_wire(v.int()?),
                (2, v) => r.success = v.int()? != 0,
                (4, Value::Bytes(m)) => {
                    for (f, v) in fields(m)? {
                        if f == 1 {
                            r.restored_pid = Some(v.int()? as i32);
                        }
                    }
                }
                (5, Value::Bytes(m)) => {
                    let (mut script, mut pid) = (String::new(), 0);
                    for (f, v) in fields(m)? {
                        match f {
                            1 => script = v.string()?,
                            2 => pid = v.int()? as i32,
                            _ => {}
                        }
                    }
                    r.notify = Some((script, pid));
                }
                (7, v) => r.cr_errno = Some(v.int()? as i32),
                (8, Value::Bytes(m)) => {
                    let mut feat = Features::default();
                    for (f, v) in fields(m)? {
                        match f {
                            1 => feat.mem_track = v.int()? != 0,
                            2 => feat.lazy_pages = v.int()? != 0,
                            _ => {}
                        }
                    }
                    r.features = Some(feat);
                }
                (9, v) => r.cr_errmsg = Some(v.string()?),
                (10, Value::Bytes(m)) => {
                    let (mut major, mut minor, mut sub) = (0, 0, 0);
                    for (f, v) in fields(m)? {
                        match f {
                            1 => major = v.int()? as u32,
                            2 => minor = v.int()? as u32,
                            4 => sub = v.int()? as u32,
                            _ => {}
                        }
                    }
                    r.version = Some(major * 10000 + minor * 100 + sub);
                }
                _ => {}
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_request_carries_its_options() {
        let o = Opts {
            images_dir_fd: 4,
            log_file: "restore.log".into(),
            ext_mnt: vec![("/data".into(), "/srv/data".into())],
            inherit_fd: vec![("pipe:[7]".into(), 1)],
            cg_root: vec![(String::new(), "/skiff/c1".into())],
            ..Default::default()
        };
        let req = request(ReqType::Restore, Some(&o), None);
        let f = fields(&req).unwrap();
        assert_eq!(f[0], (1, Value::Int(2)));
        let Value::Bytes(opts) = f[1].1 else { panic!() };
        let of = fields(opts).unwrap();
        assert_eq!(of[0], (1, Value::Int(4)));
        let ext: Vec<_> = of.iter().filter(|(n, _)| *n == 23).collect();
        let Value::Bytes(m) = ext[0].1 else { panic!() };
        let m = fields(m).unwrap();
        assert_eq!(m[0].1.string().unwrap(), "/data");
        assert_eq!(m[1].1.string().unwrap(), "/srv/data");
        assert!(of.iter().any(|(n, _)| *n == 27));
        assert!(of.iter().any(|(n, _)| *n == 25));
    }

    #[test]
    fn responses_decode() {
        let mut notify = Writer::default();
        notify.string(1, "post-restore").int(2, 4242);
        let mut w = Writer::default();
        w.int(1, 6).bool(2, true).message(5, notify);
        let r = Resp::decode(&w.into_bytes()).unwrap();
        assert_eq!(r.typ, Some(ReqType::Notify));
        assert!(r.success);
        assert_eq!(r.notify, Some(("post-restore".into(), 4242)));

        let mut v = Writer::default();
        v.int(1, 3).int(2, 17).int(4, 1);
        let mut w = Writer::default();
        w.int(1, 10).bool(2, true).message(10, v);
        assert_eq!(Resp::decode(&w.into_bytes()).unwrap().version, Some(31701));

        let mut w = Writer::default();
        w.int(1, 1).bool(2, false).int(7, 13).string(9, "no access");
        let r = Resp::decode(&w.into_bytes()).unwrap();
        assert_eq!((r.success, r.cr_errno), (false, Some(13)));
        assert_eq!(r.cr_errmsg.as_deref(), Some("no access"));
    }

    #[test]
    fn cgroup_modes_are_runcs() {
        assert_eq!(CgMode::parse("").unwrap(), CgMode::Default);
        assert_eq!(CgMode::parse("strict").unwrap(), CgMode::Strict);
        assert!(CgMode::parse("hard").is_err());
    }
}
