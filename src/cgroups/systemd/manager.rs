//! systemd's manager over D-Bus: starting a container's transient unit and waiting for its
//! job, changing its properties, stopping it and waiting until it is gone.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::bus::{address, Bus, Which};
use super::properties::Property;
use super::unit::Unit;
use super::wire::Value;

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long a job may take (runc waits 30 s too).
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Systemd {
    bus: Bus,
}

impl Systemd {
    /// Connects to `which` systemd; fails fast (naming the socket) without one.
    pub fn connect(which: Which) -> Result<Systemd> {
        let (path, uid) = address(which)?;
        let bus_name = match which {
            Which::System => "the system bus",
            Which::User => "the user's bus",
        };
        let mut bus = Bus::connect(&path, uid, Duration::from_secs(10)).with_context(|| {
            format!(
                "--systemd-cgroup: cannot reach systemd on {bus_name} {}",
                path.display()
            )
        })?;
        // Job results come as JobRemoved signals: ask for them before any job starts, so
        // that none is missed.
        bus.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            &[Value::str(format!(
                "type='signal',sender='{DEST}',path='{PATH}',interface='{MANAGER}',member='JobRemoved'"
            ))],
        )?;
        bus.call(DEST, PATH, MANAGER, "Subscribe", &[])
            .context("subscribing to systemd's job signals")?;
        Ok(Systemd { bus })
    }

    /// Starts `unit` with `props` and the container's base properties, with `pid` in it, and
    /// waits for the job to finish.
    pub fn start(&mut self, unit: &Unit, id: &str, pid: u32, props: Vec<Property>) -> Result<()> {
        let mut all: Vec<Property> = vec![
            (
                "Description".into(),
                Value::str(format!("skiff container {id}")),
            ),
            ("MemoryAccounting".into(), Value::Bool(true)),
            ("CPUAccounting".into(), Value::Bool(true)),
            ("IOAccounting".into(), Value::Bool(true)),
            ("TasksAccounting".into(), Value::Bool(true)),
            ("DefaultDependencies".into(), Value::Bool(false)),
            (
                "PIDs".into(),
                Value::Array("u".into(), vec![Value::U32(pid)]),
            ),
        ];
        if unit.is_slice() {
            all.push((
                "Wants".into(),
                Value::Array("s".into(), vec![Value::str(&unit.slice)]),
            ));
        } else {
            all.push(("Slice".into(), Value::str(&unit.slice)));
            // systemd delegates scopes (and services), never slices: it refuses the property
            // there ("Delegation not available for unit type"), as runc knows.
            all.push(("Delegate".into(), Value::Bool(true)));
        }
        all.extend(props);
        let reply = self
            .bus
            .call(
                DEST,
                PATH,
                MANAGER,
                "StartTransientUnit",
                &[
                    Value::str(&unit.name),
                    Value::str("replace"),
                    properties(all),
                    Value::Array("(sa(sv))".into(), vec![]),
                ],
            )
            .with_context(|| format!("starting the systemd unit {}", unit.name))?;
        self.wait_job(&reply, &unit.name, "starting")
    }

    /// The manager's own cgroup (`/` for the system's; a user manager's is
    /// `/user.slice/user-<uid>.slice/user@<uid>.service`): its units' cgroups are below it.
    pub fn control_group(&mut self) -> Result<String> {
        let reply = self
            .bus
            .call(
                DEST,
                PATH,
                "org.freedesktop.DBus.Properties",
                "Get",
                &[Value::str(MANAGER), Value::str("ControlGroup")],
            )
            .context("asking systemd for its ControlGroup")?;
        match reply.first() {
            Some(Value::Variant(v)) => match v.as_ref() {
                Value::Str(s) => Ok(s.clone()),
                other => bail!("systemd's ControlGroup is not a string: {other:?}"),
            },
            other => bail!("systemd's ControlGroup reply is not a variant: {other:?}"),
        }
    }

    /// Moves `pid` into the unit's cgroup (`AttachProcessesToUnit`; a user's manager that
    /// may not move it itself asks the system's, which checks that the process is the
    /// user's).
    pub fn attach(&mut self, unit: &str, pid: u32) -> Result<()> {
        self.bus
            .call(
                DEST,
                PATH,
                MANAGER,
                "AttachProcessesToUnit",
                &[
                    Value::str(unit),
                    Value::str(""),
                    Value::Array("u".into(), vec![Value::U32(pid)]),
                ],
            )
            .with_context(|| format!("attaching process {pid} to the systemd unit {unit}"))?;
        Ok(())
    }

    /// Changes a running unit's properties (not persisted: a transient unit's are runtime).
    pub fn set(&mut self, name: &str, props: Vec<Property>) -> Result<()> {
        if props.is_empty() {
            return Ok(());
        }
        self.bus
            .call(
                DEST,
                PATH,
                MANAGER,
                "SetUnitProperties",
                &[Value::str(name), Value::Bool(true), properties(props)],
            )
            .with_context(|| format!("setting the properties of the systemd unit {name}"))?;
        Ok(())
    }

    /// Stops the unit (systemd kills what is left in it) and waits until it is gone; a unit
    /// that no longer exists is fine. A failed unit is reset so that its name is free.
    pub fn stop(&mut self, name: &str) -> Result<()> {
        match self.bus.call(
            DEST,
            PATH,
            MANAGER,
            "StopUnit",
            &[Value::str(name), Value::str("replace")],
        ) {
            Ok(reply) => self.wait_job(&reply, name, "stopping")?,
            Err(e) if format!("{e:#}").contains("NoSuchUnit") => {}
            Err(e) => return Err(e).with_context(|| format!("stopping the systemd unit {name}")),
        }
        let _ = self
            .bus
            .call(DEST, PATH, MANAGER, "ResetFailedUnit", &[Value::str(name)]);
        Ok(())
    }

    fn wait_job(&mut self, reply: &[Value], unit: &str, what: &str) -> Result<()> {
        let Some(Value::Path(job)) = reply.first() else {
            bail!("systemd's reply to {what} {unit} names no job: {reply:?}");
        };
        let job = job.clone();
        let deadline = Instant::now() + JOB_TIMEOUT;
        // JobRemoved(u id, o job, s unit, s result)
        let body = self
            .bus
            .wait_signal(
                MANAGER,
                "JobRemoved",
                deadline,
                |b| matches!(b.get(1), Some(Value::Path(p)) if *p == job),
            )
            .with_context(|| format!("waiting for systemd's job {what} {unit}"))?;
        let result = body.get(3).and_then(Value::as_str).unwrap_or("");
        if result != "done" {
            bail!("systemd's job {what} {unit} ended {result:?}, not \"done\"");
        }
        Ok(())
    }
}

fn properties(props: Vec<Property>) -> Value {
    Value::Array(
        "(sv)".into(),
        props
            .into_iter()
            .map(|(k, v)| Value::Struct(vec![Value::str(k), Value::variant(v)]))
            .collect(),
    )
}
