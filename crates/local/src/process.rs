//! Starting, finding and stopping the runtime's processes.
//!
//! Every process is started detached (its own process group, stdin closed, output to a log file), so it
//! outlives the `lifeboat local up` that started it and a Ctrl-C in that terminal does not reach it. Its pid
//! goes to a pid file we write ourselves; liveness is read from `/proc`, where a zombie counts as dead.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{LocalError, Result};

/// Starts `command` detached with stdout and stderr appended to `log`, records its pid in `pid_file`
/// and returns it. A thread waits for the child so it never lingers as a zombie while we run.
pub fn spawn_detached(mut command: Command, log: &Path, pid_file: &Path) -> Result<u32> {
    if let Some(dir) = log.parent() {
        crate::layout::ensure_dir(dir)?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| LocalError::io("opening a log file", log, e))?;
    let err = out
        .try_clone()
        .map_err(|e| LocalError::io("opening a log file", log, e))?;
    command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let program = format!("{:?}", command.get_program());
    let mut child = command.spawn().map_err(|e| {
        LocalError::Command(format!(
            "starting {program} failed: {e} (log: {})",
            log.display()
        ))
    })?;
    let pid = child.id();
    crate::layout::write_atomic(pid_file, pid.to_string().as_bytes())?;
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(pid)
}

/// The pid recorded in `pid_file`, if the file exists and holds one.
pub fn read_pid(pid_file: &Path) -> Option<u32> {
    std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

/// Whether `pid` is a running process (not a zombie).
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => match stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
        {
            Some(state) => state != "Z" && state != "X",
            None => false,
        },
        Err(_) => false,
    }
}

/// The recorded pid if that process is alive.
pub fn alive_pid(pid_file: &Path) -> Option<u32> {
    read_pid(pid_file).filter(|pid| is_alive(*pid))
}

/// Sends `signal` (`KILL`, `TERM`) to `pid`. A process that is already gone is not an error.
pub fn signal(pid: u32, signal: &str) -> Result<()> {
    if !is_alive(pid) {
        return Ok(());
    }
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| LocalError::Command(format!("running kill -{signal} {pid}: {e}")))?;
    if !status.success() && is_alive(pid) {
        return Err(LocalError::Command(format!(
            "kill -{signal} {pid} failed ({status})"
        )));
    }
    Ok(())
}

/// Waits until `pid` is gone, at most `timeout`. Returns whether it is gone.
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while is_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Stops `pid`: SIGTERM, then SIGKILL after `grace`. Returns once it is gone.
pub fn stop(pid: u32, grace: Duration) -> Result<()> {
    signal(pid, "TERM")?;
    if !wait_gone(pid, grace) {
        signal(pid, "KILL")?;
        if !wait_gone(pid, Duration::from_secs(5)) {
            return Err(LocalError::Failed(format!(
                "process {pid} did not exit after SIGKILL"
            )));
        }
    }
    Ok(())
}

/// Kills `pid` at once (SIGKILL) and waits until it is gone.
pub fn kill_now(pid: u32) -> Result<()> {
    signal(pid, "KILL")?;
    if !wait_gone(pid, Duration::from_secs(5)) {
        return Err(LocalError::Failed(format!(
            "process {pid} did not exit after SIGKILL"
        )));
    }
    Ok(())
}

/// Runs a short command to completion; a non-zero exit is an error carrying its stderr.
pub fn run(mut command: Command) -> Result<String> {
    // Program and arguments only: environment variables may hold credentials.
    let description = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LocalError::Command(format!("running {description}: {e}")))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(LocalError::Command(format!(
            "{description} failed ({}): {}",
            output.status,
            // Some tools (mariadb-install-db) report on stdout: keep the tail of both.
            tail(&format!(
                "{} {}",
                String::from_utf8_lossy(&output.stderr).trim(),
                String::from_utf8_lossy(&output.stdout).trim()
            ))
        )))
    }
}

/// The pids of every process whose network namespace is `namespace` (by `ip netns pids`).
pub fn pids_in_namespace(namespace: &str) -> Vec<u32> {
    let mut command = Command::new("ip");
    command.args(["netns", "pids", namespace]);
    match run(command) {
        Ok(out) => out
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The last 600 characters of `text`, on a character boundary.
fn tail(text: &str) -> String {
    let text = text.trim();
    let start = text.char_indices().rev().nth(600).map_or(0, |(i, _)| i);
    text[start..].to_owned()
}
