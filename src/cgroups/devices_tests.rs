//! The generated programs are run through a small interpreter of the instructions the
//! compiler emits and compared with a direct statement of the semantics; the kernel's
//! verifier and enforcement are covered by the integration tests.

use super::*;

/// The semantics in the module doc, stated directly.
fn reference(rules: &[Rule], kind: Kind, major: u32, minor: u32, access: u32) -> bool {
    let mut undecided = access;
    for r in rules.iter().rev() {
        let matches = (r.kind == Kind::All || r.kind == kind)
            && r.major.map_or(true, |m| m == major)
            && r.minor.map_or(true, |m| m == minor);
        if !matches {
            continue;
        }
        if r.allow {
            undecided &= !r.access;
            if undecided == 0 {
                return true;
            }
        } else if undecided & r.access != 0 {
            return false;
        }
    }
    false
}

/// Runs the program on one device access; panics on an instruction the compiler does not
/// emit or a jump out of the program.
fn run(prog: &[Insn], kind: Kind, major: u32, minor: u32, access: u32) -> bool {
    let dev = match kind {
        Kind::Block => DEV_BLOCK as u64,
        _ => DEV_CHAR as u64,
    };
    let ctx = [((access as u64) << 16) | dev, major as u64, minor as u64];
    let mut reg = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
        let imm = i.imm as u32;
        pc += 1;
        let jump = |pc: &mut usize, cond: bool| {
            if cond {
                *pc = (*pc as i64 + i.off as i64) as usize;
            }
        };
        match i.code {
            LDX_MEM_W => {
                assert_eq!(src, 1);
                reg[dst] = ctx[i.off as usize / 4];
            }
            ALU_MOV_X => reg[dst] = reg[src] & 0xffff_ffff,
            ALU_AND_K => reg[dst] = (reg[dst] as u32 & imm) as u64,
            ALU_RSH_K => reg[dst] = ((reg[dst] as u32) >> imm) as u64,
            ALU64_MOV_K => reg[dst] = i.imm as i64 as u64,
            JMP32_JNE_K => jump(&mut pc, reg[dst] as u32 != imm),
            JMP32_JSET_K => jump(&mut pc, reg[dst] as u32 & imm != 0),
            JMP_JA => jump(&mut pc, true),
            JMP_EXIT => return reg[0] == 1,
            c => panic!("unexpected opcode {c:#x}"),
        }
        assert!(pc < prog.len(), "jumped out of the program");
    }
}

fn rule(allow: bool, kind: Kind, major: Option<u32>, minor: Option<u32>, access: u32) -> Rule {
    Rule {
        allow,
        kind,
        major,
        minor,
        access,
    }
}

fn all(allow: bool) -> Rule {
    rule(allow, Kind::All, None, None, ACC_ALL)
}

fn spec(json: &str) -> Vec<LinuxDeviceCgroup> {
    serde_json::from_str(json).unwrap()
}

/// Every combination of the devices and accesses the rules below mention.
fn check_against_reference(rules: &[Rule]) {
    let prog = compile(rules);
    for kind in [Kind::Char, Kind::Block] {
        for major in [1, 5, 136, 7, 8] {
            for minor in [0, 1, 2, 3, 5, 9] {
                for access in 1..=ACC_ALL {
                    assert_eq!(
                        run(&prog, kind, major, minor, access),
                        reference(rules, kind, major, minor, access),
                        "{rules:?} on {kind:?} {major}:{minor} access {access}"
                    );
                }
            }
        }
    }
}

#[test]
fn compiled_programs_match_the_semantics() {
    let cases: Vec<Vec<Rule>> = vec![
        vec![],
        vec![all(true)],
        vec![all(false)],
        effective(vec![all(false)], &[]),
        effective(vec![], &[]),
        vec![
            all(true),
            rule(false, Kind::Char, Some(1), Some(3), ACC_ALL),
        ],
        vec![
            rule(true, Kind::Char, Some(1), None, ACC_READ),
            rule(false, Kind::Char, Some(1), Some(5), ACC_READ),
            rule(true, Kind::Char, None, Some(5), ACC_WRITE),
        ],
        vec![
            rule(true, Kind::Block, Some(8), None, ACC_ALL),
            rule(false, Kind::All, None, Some(0), ACC_MKNOD),
            rule(true, Kind::Char, Some(5), Some(0), ACC_READ | ACC_WRITE),
        ],
    ];
    for rules in &cases {
        check_against_reference(rules);
    }
}

#[test]
fn spec_rules_parse_with_field_names_in_errors() {
    let r = from_spec(&spec(
        r#"[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":1,"minor":-1,"access":"rw"},
            {"allow":true,"type":"b","major":8,"minor":0,"access":"m"}]"#,
    ))
    .unwrap();
    assert_eq!(r[0], all(false));
    assert_eq!(
        r[1],
        rule(true, Kind::Char, Some(1), None, ACC_READ | ACC_WRITE)
    );
    assert_eq!(r[2], rule(true, Kind::Block, Some(8), Some(0), ACC_MKNOD));
    let err = |j: &str| from_spec(&spec(j)).unwrap_err().to_string();
    assert!(err(r#"[{"allow":true,"access":""}]"#).starts_with("linux.resources.devices[0].access"));
    assert!(err(r#"[{"allow":true,"access":"rx"}]"#).contains("r, w and m"));
    assert!(
        err(r#"[{"allow":true},{"allow":true,"type":"p","access":"r"}]"#)
            .starts_with("linux.resources.devices[0].access")
    );
    assert!(err(r#"[{"allow":true,"type":"p","access":"r"}]"#)
        .starts_with("linux.resources.devices[0].type"));
    assert!(
        err(r#"[{"allow":true,"type":"c","major":-2,"access":"r"}]"#)
            .starts_with("linux.resources.devices[0].major")
    );
}

#[test]
fn defaults_follow_the_last_wildcard_so_later_denies_win() {
    // containerd's config: deny all, then runc's defaults make /dev/null usable.
    let rules = effective(vec![all(false)], &[]);
    assert!(reference(&rules, Kind::Char, 1, 3, ACC_READ | ACC_WRITE));
    assert!(reference(&rules, Kind::Char, 136, 4, ACC_READ));
    assert!(reference(&rules, Kind::Block, 8, 0, ACC_MKNOD));
    assert!(!reference(&rules, Kind::Block, 8, 0, ACC_READ));
    assert!(!reference(&rules, Kind::Char, 10, 200, ACC_READ));
    // An explicit deny after the wildcard removes a default.
    let deny_null = rule(false, Kind::Char, Some(1), Some(3), ACC_ALL);
    let rules = effective(vec![all(false), deny_null.clone()], &[]);
    assert!(!reference(&rules, Kind::Char, 1, 3, ACC_READ));
    assert!(reference(&rules, Kind::Char, 1, 5, ACC_READ));
    // Without any rule the defaults are all that is allowed.
    let rules = effective(vec![], &[]);
    assert!(reference(&rules, Kind::Char, 1, 9, ACC_READ));
    assert!(!reference(&rules, Kind::Char, 4, 1, ACC_READ));
    // A node created by linux.devices at a default's path replaces that default.
    let rules = effective(vec![all(false)], &["/dev/null"]);
    assert!(!reference(&rules, Kind::Char, 1, 3, ACC_READ));
    assert!(reference(&rules, Kind::Char, 1, 5, ACC_READ));
    // Privileged: allow everything; the rules before a full wildcard are dropped.
    let rules = effective(vec![deny_null, all(true)], &[]);
    assert_eq!(rules[0], all(true));
    assert!(reference(&rules, Kind::Block, 8, 0, ACC_ALL));
}

#[test]
fn program_shape_is_prologue_rules_and_default_deny() {
    let prog = compile(&[all(true)]);
    // 6 prologue, allow-all: and, jne, mov, exit; then the default deny.
    assert_eq!(prog.len(), 6 + 4 + 2);
    assert_eq!(prog.last().unwrap().code, JMP_EXIT);
    assert_eq!(prog[prog.len() - 2].imm, 0);
}
