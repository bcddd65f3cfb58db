//! Which process holds a lock, in terms a later run on the same machine
//! can check: `linux:BOOT_ID:PID_NAMESPACE:PID:START_TICKS`.
//!
//! A run killed with SIGKILL (or by the OOM killer, or a closed laptop
//! lid that never came back) cannot give its lock back. When the next run
//! is on the same machine, it can see that the holder is gone and take
//! the lock at once instead of waiting for it to expire. The boot id and
//! the pid namespace make sure the pid means the same process table (a
//! container has its own), and the start time tells a reused pid from the
//! holder. Anything that cannot be read counts as "maybe alive": the lock
//! then only expires.

/// This process, or an empty string where it cannot be named (not Linux,
/// no `/proc`).
pub fn this() -> String {
    name(std::process::id()).unwrap_or_default()
}

/// Whether the process `named` (as [`this`] wrote it) has ended: it ran
/// on this machine, in this pid namespace, since its last boot, and no
/// process with its pid and start time is left.
pub fn ended(named: &str) -> bool {
    let Some((machine, pid, start)) = parse(named) else {
        return false;
    };
    if Some(machine) != here().as_deref() {
        return false;
    }
    start_ticks(pid).is_none_or(|now| now != start)
}

/// `linux:BOOT_ID:PID_NAMESPACE:PID:START_TICKS` of process `pid`.
fn name(pid: u32) -> Option<String> {
    Some(format!("{}:{pid}:{}", here()?, start_ticks(pid)?))
}

/// `linux:BOOT_ID:PID_NAMESPACE` of this machine and namespace.
fn here() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()?
        .trim()
        .to_owned();
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    // `pid:[4026531836]`
    let namespace: String = namespace
        .to_string_lossy()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    (!boot.is_empty() && !namespace.is_empty())
        .then(|| format!("linux:{boot}:{namespace}"))
}

/// Splits a name into its machine part, pid and start time.
fn parse(named: &str) -> Option<(&str, u32, u64)> {
    let (rest, start) = named.rsplit_once(':')?;
    let (machine, pid) = rest.rsplit_once(':')?;
    if !machine.starts_with("linux:") {
        return None;
    }
    Some((machine, pid.parse().ok()?, start.parse().ok()?))
}

/// When process `pid` started, in clock ticks since boot (`/proc/PID/stat`
/// field 22); `None` when there is no such process, or it is a zombie.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and ")": fields follow the last ")".
    let fields: Vec<&str> =
        stat.get(stat.rfind(") ")? + 2..)?.split(' ').collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_named_and_alive() {
        let me = this();
        assert!(me.starts_with("linux:"), "{me}");
        assert!(!ended(&me), "{me}");
    }

    #[test]
    fn a_reused_pid_is_told_apart_by_its_start_time() {
        let me = this();
        let (rest, start) = me.rsplit_once(':').expect("a start time");
        let start: u64 = start.parse().expect("a number");
        let other = format!("{rest}:{}", start + 1);
        assert!(ended(&other), "{other}");
    }

    #[test]
    fn a_process_gone_from_this_machine_has_ended() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("run sleep");
        let named = name(child.id()).expect("a live child is named");
        assert!(!ended(&named), "alive: {named}");
        child.kill().expect("kill sleep");
        child.wait().expect("reap sleep");
        assert!(ended(&named), "gone: {named}");
    }

    #[test]
    fn another_machine_or_namespace_is_never_judged() {
        let (machine, pid, start) = parse(&this())
            .map(|(m, p, s)| (m.to_owned(), p, s))
            .expect("parses");
        let (boot, namespace) = machine.rsplit_once(':').expect("a namespace");
        let gone = start + 1;
        let other_boot =
            format!("linux:0-{}:{namespace}:{pid}:{gone}", &boot[6..]);
        assert!(!ended(&other_boot), "{other_boot}");
        let other_ns = format!("{boot}:1{namespace}:{pid}:{gone}");
        assert!(!ended(&other_ns), "{other_ns}");
        assert!(ended(&format!("{machine}:{pid}:{gone}")), "the same, here");
    }

    #[test]
    fn unreadable_names_count_as_alive() {
        for named in ["", "darwin:x:1:2", "linux:b:1:nope:3", "pid 42"] {
            assert!(!ended(named), "{named:?}");
        }
    }
}
