//! Helpers for the drill tests: the built `lifeboat` binary, a local runtime per test (its own state
//! directory, ports and namespaces), and checks that `local down` left nothing behind.
//!
//! These tests need root (network namespaces) and the binaries `lifeboat` and `storefront` built next to
//! the test executable's target directory (`cargo build -p lifeboat-cli -p storefront`, which
//! `scripts/test` does). They fail with a message saying so when either is missing.

#![allow(
    dead_code,
    reason = "shared by several test binaries, each of which uses part of it"
)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lifeboat_local::Runtime;

/// `target/<profile>/`: the test executable lives in its `deps/`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test executable is in <target>/<profile>/deps")
        .to_path_buf()
}

pub fn lifeboat_bin() -> PathBuf {
    let path = std::env::var_os("LIFEBOAT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("lifeboat"));
    assert!(
        path.is_file(),
        "the lifeboat binary is not at {} (build it first: cargo build -p lifeboat-cli -p storefront, or set LIFEBOAT_BIN)",
        path.display()
    );
    let storefront = path.with_file_name("storefront");
    assert!(
        storefront.is_file() || std::env::var_os("LIFEBOAT_STOREFRONT_BIN").is_some(),
        "the storefront binary is not at {} (build it first: cargo build -p storefront)",
        storefront.display()
    );
    path
}

pub fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"));
    assert!(
        root,
        "the drill tests create network namespaces and must run as root"
    );
}

/// Runtimes started by tests run one at a time: two cores cannot hold several two-region runtimes under
/// load and still give the timings a fair chance. A lock file (held for the test's life) serializes them
/// across the test processes nextest starts.
pub struct Serial {
    _lock: File,
}

pub fn serial() -> Serial {
    let path = std::env::temp_dir().join("lifeboat-drill-tests.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .expect("opening the test lock file");
    file.lock().expect("locking the test lock file");
    Serial { _lock: file }
}

/// Four free consecutive ports on 127.0.0.1 (front door, control, database, storefront).
pub fn free_base_port() -> u16 {
    for _ in 0..200 {
        let candidate = 20_000 + (uuid::Uuid::new_v4().as_u128() % 30_000) as u16;
        let free =
            (0..4).all(|i| std::net::TcpListener::bind(("127.0.0.1", candidate + i)).is_ok());
        if free {
            return candidate;
        }
    }
    panic!("no four free consecutive ports found on 127.0.0.1");
}

pub struct TestRuntime {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub state_dir: PathBuf,
    pub base_port: u16,
    _serial: Serial,
}

impl TestRuntime {
    /// A configuration for a fresh runtime, not started.
    pub fn configured(extra_local: &str) -> TestRuntime {
        require_root();
        let serial = serial();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let state_dir = dir.path().join("state");
        let base_port = free_base_port();
        let config = dir.path().join("lifeboat.toml");
        std::fs::write(
            &config,
            format!(
                "[local]\nstate_dir = \"{}\"\nbase_port = {base_port}\n{extra_local}",
                state_dir.display()
            ),
        )
        .expect("writing the test configuration");
        TestRuntime {
            dir,
            config,
            state_dir,
            base_port,
            _serial: serial,
        }
    }

    /// A runtime brought up with `lifeboat local up`.
    pub fn up() -> TestRuntime {
        let rt = TestRuntime::configured("");
        let out = rt.lifeboat(&["local", "up"]);
        assert!(
            out.status.success(),
            "`lifeboat local up` failed:\n{}",
            text(&out)
        );
        rt
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(lifeboat_bin());
        c.arg("--config").arg(&self.config);
        c
    }

    pub fn lifeboat(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .output()
            .expect("running lifeboat")
    }

    pub fn runtime(&self) -> Runtime {
        Runtime::open_up(&self.state_dir).expect("the runtime is up")
    }

    /// Runs a drill with its report in `<tmp>/<name>`; returns the output and the parsed report (if any).
    pub fn drill(&self, name: &str, args: &[&str]) -> (Output, Option<serde_json::Value>, PathBuf) {
        let report_dir = self.dir.path().join(name);
        let out = self
            .command()
            .arg("drill")
            .args(args)
            .arg("--report")
            .arg(&report_dir)
            .output()
            .expect("running lifeboat drill");
        let report = std::fs::read(report_dir.join("report.json"))
            .ok()
            .map(|b| serde_json::from_slice(&b).expect("report.json is JSON"));
        (out, report, report_dir)
    }

    /// `local down`, then checks nothing of the runtime is left.
    pub fn down_and_check_clean(&self) {
        let before = Runtime::open(&self.state_dir).ok();
        let out = self.lifeboat(&["local", "down"]);
        assert!(
            out.status.success(),
            "`lifeboat local down` failed:\n{}",
            text(&out)
        );
        if let Some(rt) = before {
            assert_clean(&rt);
        }
    }
}

impl Drop for TestRuntime {
    fn drop(&mut self) {
        // Whatever a test did, leave no runtime behind.
        let _ = self.command().args(["local", "down"]).output();
    }
}

/// No process of the runtime alive, its namespaces and links gone.
pub fn assert_clean(rt: &Runtime) {
    let layout = rt.layout();
    let mut pid_files = vec![layout.supervisor_pid(), layout.haproxy_pid()];
    for r in rt.regions() {
        pid_files.push(layout.mariadb_pid(&r.name));
        pid_files.push(layout.storefront_pid(&r.name));
    }
    for f in pid_files {
        if let Some(pid) = std::fs::read_to_string(&f)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid),
                "pid {pid} from {} still runs",
                f.display()
            );
        }
    }
    let namespaces = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let listed = String::from_utf8_lossy(&namespaces.stdout);
    for r in rt.regions() {
        assert!(
            !listed.contains(&r.link.namespace),
            "namespace {} is still there:\n{listed}",
            r.link.namespace
        );
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"))
}

pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
