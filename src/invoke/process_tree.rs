//! The processes of one function's run, and how to end every one of them.
//!
//! A `command` or `bootstrap` program starts as the leader of a session of
//! its own (`setsid`). Everything it starts belongs to that session unless
//! it leaves it on purpose, and no process from outside can join it: the
//! kernel never moves a process into another session. That makes the
//! session the environment's boundary, for two things:
//! - ending the run: [`ProcessTree::kill`] kills the session, its process
//!   groups, every descendant of theirs (a grandchild that called `setsid`
//!   is still a descendant while its parent lives), and any process that
//!   carries the environment's marker variable (one whose parent has exited
//!   and which was handed to init);
//! - the Runtime API, which answers only the session's processes
//!   (`bootstrap::peers`).
//!
//! What escapes: a process that leaves the session, loses its parent and
//! clears its environment. A container or a cgroup is the boundary for
//! code that tries that on purpose.

use std::collections::{HashMap, HashSet};

/// A process id, as the kernel's calls take it.
pub(crate) type Pid = libc::pid_t;

/// Makes the program a session leader when it starts.
pub(crate) fn own_session(command: &mut tokio::process::Command) {
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe calls are allowed; setsid is one, and nothing
    // else is called or allocated.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The session a process belongs to, if the process is there.
pub(crate) fn session_of(pid: Pid) -> Option<Pid> {
    // SAFETY: getsid only reads the process table.
    let sid = unsafe { libc::getsid(pid) };
    (sid > 0).then_some(sid)
}

/// One run's processes: the session its leader started, and the marker
/// variable its processes inherit.
pub(crate) struct ProcessTree {
    /// The leader's pid, which is also the session's and its first group's
    /// id; `None` once the tree was killed (or when the spawn gave no pid).
    leader: Option<Pid>,
    /// `NAME=value` that only this run's processes carry in their
    /// environment, if the run has one.
    marker: Option<Vec<u8>>,
}

impl ProcessTree {
    pub(crate) fn new(leader: Option<u32>) -> ProcessTree {
        ProcessTree {
            leader: leader.and_then(|pid| Pid::try_from(pid).ok()),
            marker: None,
        }
    }

    /// Also counts as this run's any process whose environment holds
    /// `name=value` (the value must be unique to the run).
    pub(crate) fn with_marker(mut self, name: &str, value: &str) -> ProcessTree {
        self.marker = Some(format!("{name}={value}").into_bytes());
        self
    }

    /// The session's id, while the tree has not been killed.
    pub(crate) fn session(&self) -> Option<Pid> {
        self.leader
    }

    /// Kills every process of the run with SIGKILL. A process may fork
    /// while the others die, so the search is repeated until it finds
    /// nothing (a few rounds at most).
    pub(crate) fn kill(&mut self) {
        let Some(leader) = self.leader.take() else {
            return;
        };
        // SAFETY: killpg only sends a signal. It goes first, so the common
        // case (one group) ends even if /proc cannot be read.
        unsafe { libc::killpg(leader, libc::SIGKILL) };
        for _ in 0..4 {
            let members = members(leader, self.marker.as_deref(), &processes());
            if members.is_empty() {
                break;
            }
            for pid in members {
                // SAFETY: kill only sends a signal, to a process found a
                // moment ago to be one of this run's.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

impl Drop for ProcessTree {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What /proc says of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Proc {
    pid: Pid,
    ppid: Pid,
    group: Pid,
    session: Pid,
}

/// Every process of the machine that can be read now (zombies left out:
/// they are dead already, and their pids may not be reused while they wait).
fn processes() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<Pid>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            parse_stat(pid, &stat)
        })
        .collect()
}

/// `/proc/PID/stat`: `pid (comm) state ppid pgrp session …`. The name may
/// hold spaces and parentheses, so the fields are read after its last `)`.
fn parse_stat(pid: Pid, stat: &str) -> Option<Proc> {
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    let mut number = || fields.next()?.parse::<Pid>().ok();
    Some(Proc {
        pid,
        ppid: number()?,
        group: number()?,
        session: number()?,
    })
}

/// The run's processes among `all`: the leader's session and group, the
/// processes carrying the marker, and all their descendants. Never this
/// process or init.
fn members(leader: Pid, marker: Option<&[u8]>, all: &[Proc]) -> Vec<Pid> {
    let me = std::process::id() as Pid;
    let mut found: HashSet<Pid> = all
        .iter()
        .filter(|p| p.pid == leader || p.session == leader || p.group == leader)
        .map(|p| p.pid)
        .collect();
    if let Some(marker) = marker {
        let marked: Vec<Pid> = all
            .iter()
            .filter(|p| !found.contains(&p.pid) && p.pid != me && carries(p.pid, marker))
            .map(|p| p.pid)
            .collect();
        found.extend(marked);
    }
    let mut children: HashMap<Pid, Vec<Pid>> = HashMap::new();
    for p in all {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut queue: Vec<Pid> = found.iter().copied().collect();
    while let Some(pid) = queue.pop() {
        for &child in children.get(&pid).into_iter().flatten() {
            if found.insert(child) {
                queue.push(child);
            }
        }
    }
    found.remove(&me);
    found.remove(&1);
    let mut found: Vec<Pid> = found.into_iter().collect();
    found.sort_unstable();
    found
}

/// Whether the process's environment holds `marker` (`NAME=value`) as one
/// of its entries. A process of another user cannot be read, and is not ours.
fn carries(pid: Pid, marker: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|&b| b == 0).any(|entry| entry == marker))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: Pid, ppid: Pid, group: Pid, session: Pid) -> Proc {
        Proc {
            pid,
            ppid,
            group,
            session,
        }
    }

    #[test]
    fn a_stat_line_is_read_after_the_programs_name() {
        let stat = "4242 (my (odd) prog) S 17 4242 4240 0 -1 4194560 ...";
        assert_eq!(parse_stat(4242, stat), Some(p(4242, 17, 4242, 4240)));
        assert_eq!(parse_stat(9, "9 (zombie) Z 1 9 9 0"), None);
        assert_eq!(parse_stat(9, "garbage"), None);
    }

    #[test]
    fn the_session_its_groups_and_every_descendant_are_members_and_nothing_else() {
        let all = [
            p(100, 50, 100, 100),  // the leader
            p(101, 100, 101, 100), // a child that made a group of its own
            p(102, 101, 102, 102), // its child, which called setsid
            p(103, 102, 103, 103), // and that one's child
            p(200, 50, 200, 200),  // another run's leader
            p(201, 200, 200, 200), // its child
            p(1, 0, 1, 1),         // init is never killed
        ];
        assert_eq!(members(100, None, &all), vec![100, 101, 102, 103]);
        assert_eq!(members(200, None, &all), vec![200, 201]);
    }

    #[tokio::test]
    async fn kill_ends_a_grandchild_that_left_the_session_and_lost_its_parent() {
        // The program starts a grandchild in a session of its own, which
        // outlives its parent (so init adopts it), as a daemon would.
        let marker = format!("{}", uuid::Uuid::new_v4().simple());
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild");
        let script = format!(
            "sh -c 'setsid sleep 300 & echo $! > {}'; exec sleep 300",
            pidfile.display()
        );
        let mut command = tokio::process::Command::new("sh");
        command
            .args(["-c", &script])
            .env("MQTRIGGER_TEST_RUN", &marker)
            .kill_on_drop(true);
        own_session(&mut command);
        let mut child = command.spawn().unwrap();
        let mut tree = ProcessTree::new(child.id()).with_marker("MQTRIGGER_TEST_RUN", &marker);
        assert_eq!(tree.session(), child.id().map(|pid| pid as Pid));
        let grandchild: Pid = loop {
            if let Some(pid) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                break pid;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        // `setsid` may not have run yet when the pid is written.
        for _ in 0..200 {
            if session_of(grandchild) != tree.session() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_ne!(
            session_of(grandchild),
            tree.session(),
            "it left the session"
        );
        tree.kill();
        let _ = child.wait().await;
        let mut gone = false;
        for _ in 0..200 {
            let stat = std::fs::read_to_string(format!("/proc/{grandchild}/stat"));
            if stat.map_or(true, |s| parse_stat(grandchild, &s).is_none()) {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(gone, "the grandchild {grandchild} outlived its run");
    }
}
