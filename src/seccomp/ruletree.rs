//! How the argument conditions of one syscall's rules combine, modelled on what libseccomp
//! 2.5 (and so runc and crun) does with them.
//!
//! Each condition becomes one or more *nodes*, each comparing one 32-bit word of an argument
//! (`(word & mask) OP datum`, OP one of ==, >, >=). On a 64-bit ABI a 64-bit comparison is
//! split over the high and the low word; on a 32-bit ABI only the low word exists. A rule is
//! a chain of such nodes in argument order, ending in its action.
//!
//! Rules of the same syscall are merged into one tree, rule by rule, in profile order:
//! * the nodes of a *level* are kept sorted: higher argument (and high word before low word)
//!   first, then ==/!= before </<= before >/>=, then by datum (larger first, but smaller
//!   first for </<=); a node equal to one already there (same word, operator, datum and mask)
//!   is merged with it instead of being added;
//! * when both the old and the new node give an action on the same side and they differ,
//!   the profile is refused (libseccomp's EEXIST) unless the nodes are both 64-bit high-word
//!   nodes with more to test, where on the true side the rule with the larger datum wins and
//!   on the false side the earlier rule keeps its action;
//! * a new rule that ends where the old tree goes on replaces that subtree (refused if the
//!   subtree has another action); a new rule that goes on where the old one ends is dropped
//!   from there, and then libseccomp also skips the new rule's false side at that node.
//!
//! Evaluation walks a level in order; a node's outcome either is an action, or descends into
//! the level below, or (no action, or nothing below decided) moves on to the next node of the
//! level; a level that runs out hands back to the level above. The first action met wins.
//!
//! libseccomp shares the continuation of a split 64-bit `<`, `<=`, `>`, `>=` or `!=` between
//! two nodes. When a second rule merges into such a tree, the sharing leaks conditions from
//! one path into the other: the filter then returns actions no rule asked for, or libseccomp
//! loops forever while exporting it. [`Tree::tainted`] flags that case so the compiler can
//! refuse it; every other case is modelled exactly (checked against libseccomp by the
//! differential test).

use super::profile::{Cond, Op};

/// What a node compares: `(word & mask) == datum`, `>` or `>=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cmp {
    Eq,
    /// Same test as `Eq`, but libseccomp never merges it with an `Eq` node.
    MaskedEq,
    Gt,
    Ge,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Branch {
    None,
    Act(u32),
    Next(Vec<Node>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Node {
    pub arg: u8,
    /// Compares the high word of a 64-bit argument.
    pub hi: bool,
    pub cmp: Cmp,
    pub datum: u32,
    pub mask: u32,
    /// The profile's operator, which decides the node's place in its level.
    orig: Op,
    /// The whole 64-bit datum of the condition.
    full: u64,
    pub t: Branch,
    pub f: Branch,
}

/// Two rules for one syscall whose outcomes libseccomp merges in a way that depends on
/// which rule came first; the compiler reports it as a conflict.
#[derive(Debug)]
pub(super) struct Conflict;

/// The merged conditional rules of one syscall.
#[derive(Debug, Default)]
pub(super) struct Tree {
    pub level: Vec<Node>,
    /// Some rule has a shared 64-bit continuation (see the module doc).
    shared: bool,
    /// A rule was merged into a tree with a shared continuation.
    pub tainted: bool,
}

impl Node {
    fn arg_rank(&self) -> u32 {
        u32::from(self.arg) * 2 + u32::from(self.hi)
    }

    fn op_rank(&self) -> u32 {
        match self.orig {
            Op::Eq | Op::Ne | Op::MaskedEq { .. } => 3,
            Op::Lt | Op::Le => 2,
            Op::Gt | Op::Ge => 1,
        }
    }

    fn same(&self, o: &Node) -> bool {
        self.arg_rank() == o.arg_rank()
            && self.cmp == o.cmp
            && self.datum == o.datum
            && self.mask == o.mask
    }

    /// Whether `self` sorts after `o` in a level.
    fn below(&self, o: &Node) -> bool {
        let (a, b) = (self.arg_rank(), o.arg_rank());
        if a != b {
            return a < b;
        }
        let (a, b) = (self.op_rank(), o.op_rank());
        if a != b {
            return a < b;
        }
        match self.orig {
            Op::Lt | Op::Le => self.datum > o.datum,
            _ => self.datum < o.datum,
        }
    }

    fn is_leaf(&self) -> bool {
        !matches!(self.t, Branch::Next(_)) && !matches!(self.f, Branch::Next(_))
    }
}

/// The chain of one rule: its conditions in argument order (at most one per argument), as
/// nodes for a 64-bit (`wide`) or 32-bit ABI. `None` when no condition is left (a masked
/// comparison with an empty mask always holds), i.e. the rule is unconditional.
pub(super) fn chain(conds: &[Cond], wide: bool, action: u32) -> Option<(Node, bool)> {
    let mut sorted: Vec<&Cond> = conds.iter().collect();
    sorted.sort_by_key(|c| c.index);
    let mut shared = false;
    let mut tail = Branch::Act(action);
    // Built from the last condition back, so each block knows what follows it.
    for c in sorted.iter().rev() {
        let (mask, datum) = match c.op {
            Op::MaskedEq { mask } => (mask, c.value),
            _ => (u64::MAX, c.value),
        };
        let always = if wide { mask == 0 } else { mask as u32 == 0 };
        if matches!(c.op, Op::MaskedEq { .. }) && always {
            continue;
        }
        let node = |hi: bool, cmp: Cmp, t: Branch, f: Branch| {
            let (m, d) = if hi {
                ((mask >> 32) as u32, (datum >> 32) as u32)
            } else {
                (mask as u32, datum as u32)
            };
            Node {
                arg: c.index as u8,
                hi,
                cmp,
                datum: d & m,
                mask: m,
                orig: c.op,
                full: c.value,
                t,
                f,
            }
        };
        let next = |n: Node| Branch::Next(vec![n]);
        let last = matches!(tail, Branch::Act(_));
        let shares = wide && !last && !matches!(c.op, Op::Eq | Op::MaskedEq { .. });
        shared |= shares;
        let t = std::mem::replace(&mut tail, Branch::None);
        tail = next(if !wide {
            match c.op {
                Op::Eq => node(false, Cmp::Eq, t, Branch::None),
                Op::MaskedEq { .. } => node(false, Cmp::MaskedEq, t, Branch::None),
                Op::Gt => node(false, Cmp::Gt, t, Branch::None),
                Op::Ge => node(false, Cmp::Ge, t, Branch::None),
                Op::Ne => node(false, Cmp::Eq, Branch::None, t),
                Op::Lt => node(false, Cmp::Ge, Branch::None, t),
                Op::Le => node(false, Cmp::Gt, Branch::None, t),
            }
        } else {
            match c.op {
                Op::Eq | Op::MaskedEq { .. } => {
                    let cmp = if c.op == Op::Eq {
                        Cmp::Eq
                    } else {
                        Cmp::MaskedEq
                    };
                    let lo = node(false, cmp, t, Branch::None);
                    node(true, cmp, next(lo), Branch::None)
                }
                Op::Ne => {
                    let lo = node(false, Cmp::Eq, Branch::None, t.clone());
                    node(true, Cmp::Eq, next(lo), t)
                }
                Op::Gt | Op::Ge => {
                    let cmp = if c.op == Op::Gt { Cmp::Gt } else { Cmp::Ge };
                    let lo = node(false, cmp, t.clone(), Branch::None);
                    let eq = node(true, Cmp::Eq, next(lo), Branch::None);
                    node(true, Cmp::Gt, t, next(eq))
                }
                Op::Lt | Op::Le => {
                    let cmp = if c.op == Op::Lt { Cmp::Ge } else { Cmp::Gt };
                    let lo = node(false, cmp, Branch::None, t.clone());
                    let eq = node(true, Cmp::Eq, next(lo), t);
                    node(true, Cmp::Gt, Branch::None, next(eq))
                }
            }
        });
    }
    match tail {
        Branch::Next(mut v) => Some((v.pop().expect("one node"), shared)),
        _ => None,
    }
}

impl Tree {
    pub(super) fn new(first: Node, shared: bool) -> Tree {
        Tree {
            level: vec![first],
            shared,
            tainted: false,
        }
    }

    /// Merges the next rule's chain (from [`chain`]) into the tree.
    pub(super) fn add(&mut self, n: Node, shared: bool) -> Result<(), Conflict> {
        self.tainted |= self.shared || shared;
        self.shared |= shared;
        insert(&mut self.level, n)
    }
}

/// Every action in the subtree equals `action`.
fn only_action(b: &Branch, action: u32) -> bool {
    match b {
        Branch::None => true,
        Branch::Act(a) => *a == action,
        Branch::Next(level) => level
            .iter()
            .all(|n| only_action(&n.t, action) && only_action(&n.f, action)),
    }
}

/// Puts `n` into the level: merged into the first equal node met, or before the first node
/// it sorts above (the walk checks equality first at each position, as libseccomp does).
fn insert(level: &mut Vec<Node>, n: Node) -> Result<(), Conflict> {
    for i in 0..level.len() {
        if level[i].same(&n) {
            return merge(&mut level[i], n);
        }
        if level[i].below(&n) {
            level.insert(i, n);
            return Ok(());
        }
    }
    level.push(n);
    Ok(())
}

/// Merges a new rule's action `na` into one side of `x`: it replaces a subtree whose
/// actions all equal it; an action that differs from `x`'s is a conflict unless both nodes
/// go on elsewhere (`takes_over`: the new action wins then).
fn merge_action(
    x: &mut Node,
    true_side: bool,
    na: u32,
    n_leaf: bool,
    takes_over: bool,
) -> Result<(), Conflict> {
    fn side(x: &mut Node, true_side: bool) -> &mut Branch {
        if true_side {
            &mut x.t
        } else {
            &mut x.f
        }
    }
    match *side(x, true_side) {
        Branch::Act(xa) if xa != na => {
            if takes_over {
                *side(x, true_side) = Branch::Act(na);
            }
            if x.is_leaf() || n_leaf {
                return Err(Conflict);
            }
        }
        Branch::Act(_) => {}
        ref other => {
            if !only_action(other, na) {
                return Err(Conflict);
            }
            *side(x, true_side) = Branch::Act(na);
        }
    }
    Ok(())
}

/// Merges `n` into the equal node `x`.
fn merge(x: &mut Node, n: Node) -> Result<(), Conflict> {
    // Actions first, the true side and then the false side. On the true side of 64-bit
    // high-word nodes, the rule with the larger datum takes over. (libseccomp then copies,
    // on the false side, the new node's true-side action over the old one's when the new
    // datum is smaller; high-word nodes with a false-side action never have a true-side
    // one, so that changes nothing.)
    let n_leaf = n.is_leaf();
    if let Branch::Act(na) = n.t {
        merge_action(x, true, na, n_leaf, n.hi && n.full > x.full)?;
    }
    if let Branch::Act(na) = n.f {
        merge_action(x, false, na, n_leaf, false)?;
    }
    // Then what follows, true side first. A new continuation where the old rule already
    // ends is dropped, and libseccomp stops merging this node there (its false side too).
    let Node { t, f, .. } = n;
    for (xb, nb) in [(&mut x.t, t), (&mut x.f, f)] {
        let Branch::Next(mut sub) = nb else { continue };
        let head = sub.remove(0);
        match xb {
            Branch::Next(level) => insert(level, head)?,
            Branch::None => *xb = Branch::Next(vec![head]),
            Branch::Act(_) => return Ok(()),
        }
    }
    Ok(())
}
