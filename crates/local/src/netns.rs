//! The network of a runtime: one bridge in the root namespace and one network namespace per region,
//! joined to the bridge by a veth pair.
//!
//! Addresses come from `10.213.<n>.0/24` (our own private test range; `<n>` is the first one no interface
//! on this machine uses yet): the bridge is `.1` (the control server listens there), the regions `.2`, `.3`.
//! Cutting a region's veth on the bridge side isolates it from the control server, the front door and
//! the other region, while processes inside it still reach each other.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::error::{LocalError, Result};
use crate::process::run;

/// The first two octets of the range every runtime takes a /24 from.
const RANGE_PREFIX: &str = "10.213";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    pub bridge: String,
    pub bridge_ip: String,
    /// `10.213.<n>`: region `i` is `<subnet>.<i + 2>`.
    pub subnet: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionLink {
    pub namespace: String,
    /// The veth end on the bridge (root namespace): taking it down isolates the region.
    pub host_veth: String,
    /// The veth end inside the namespace.
    pub ns_veth: String,
    pub ip: String,
}

/// Names derived from a short id, so several runtimes (parallel tests) never collide. Interface names
/// stay within the kernel's 15 characters.
pub fn plan(id: &str, regions: &[&str]) -> (String, Vec<(String, String, String)>) {
    let bridge = format!("lb{id}br");
    let links = regions
        .iter()
        .enumerate()
        .map(|(i, region)| {
            (
                format!("lb-{id}-{region}"),
                format!("lb{id}h{i}"),
                format!("lb{id}n{i}"),
            )
        })
        .collect();
    (bridge, links)
}

/// Whether a network namespace of that name exists.
pub fn namespace_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// Whether a network interface of that name exists in the root namespace.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn ip(args: &[&str]) -> Result<String> {
    let mut command = Command::new("ip");
    command.args(args);
    run(command)
}

/// Picks a free /24 and creates the bridge with its address. The choice and creation happen under a
/// machine-wide lock file, so two runtimes starting at once never take the same subnet.
pub fn create_bridge(bridge: &str) -> Result<NetworkInfo> {
    let lock_path = Path::new("/run/lock/lifeboat-local-net.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path)
        .map_err(|e| LocalError::io("opening the network lock file", lock_path, e))?;
    lock.lock()
        .map_err(|e| LocalError::io("locking the network lock file", lock_path, e))?;
    let used = ip(&["-o", "-4", "addr", "show"])?;
    let n = (1..=254u32)
        .find(|n| !used.contains(&format!(" {RANGE_PREFIX}.{n}.")))
        .ok_or_else(|| {
            LocalError::Unavailable(format!("no free /24 left in {RANGE_PREFIX}.0.0/16"))
        })?;
    let subnet = format!("{RANGE_PREFIX}.{n}");
    let bridge_ip = format!("{subnet}.1");
    if !link_exists(bridge) {
        ip(&["link", "add", bridge, "type", "bridge"]).map_err(not_permitted)?;
    }
    ip(&["addr", "replace", &format!("{bridge_ip}/24"), "dev", bridge])?;
    ip(&["link", "set", bridge, "up"])?;
    drop(lock);
    Ok(NetworkInfo {
        bridge: bridge.to_owned(),
        bridge_ip,
        subnet,
    })
}

/// Turns "Operation not permitted" into the clear, documented refusal.
fn not_permitted(e: LocalError) -> LocalError {
    let text = e.to_string();
    if text.contains("Operation not permitted") || text.contains("Permission denied") {
        LocalError::Unavailable(format!(
            "cannot create network namespaces and links (needs root or CAP_NET_ADMIN / CAP_SYS_ADMIN): {text}"
        ))
    } else {
        e
    }
}

/// Creates a region's namespace and its veth pair onto the bridge, with addresses and loopback up.
pub fn create_region(net: &NetworkInfo, link: &RegionLink) -> Result<()> {
    if !namespace_exists(&link.namespace) {
        ip(&["netns", "add", &link.namespace]).map_err(not_permitted)?;
    }
    if !link_exists(&link.host_veth) {
        ip(&[
            "link",
            "add",
            &link.host_veth,
            "type",
            "veth",
            "peer",
            "name",
            &link.ns_veth,
            "netns",
            &link.namespace,
        ])?;
    }
    ip(&["link", "set", &link.host_veth, "master", &net.bridge])?;
    ip(&["link", "set", &link.host_veth, "up"])?;
    ip(&[
        "-n",
        &link.namespace,
        "addr",
        "replace",
        &format!("{}/24", link.ip),
        "dev",
        &link.ns_veth,
    ])?;
    ip(&["-n", &link.namespace, "link", "set", &link.ns_veth, "up"])?;
    ip(&["-n", &link.namespace, "link", "set", "lo", "up"])?;
    Ok(())
}

/// Removes a region's namespace (which removes its veth pair too). Nothing to remove is a success.
pub fn delete_region(link: &RegionLink) -> Result<()> {
    if namespace_exists(&link.namespace) {
        ip(&["netns", "del", &link.namespace]).or_else(already_gone)?;
    }
    // Deleting the namespace removes the pair, asynchronously: the link may vanish under us.
    if link_exists(&link.host_veth) {
        ip(&["link", "del", &link.host_veth]).or_else(already_gone)?;
    }
    Ok(())
}

fn already_gone(e: LocalError) -> Result<String> {
    let text = e.to_string();
    if text.contains("Cannot find device") || text.contains("No such file") {
        Ok(String::new())
    } else {
        Err(e)
    }
}

pub fn delete_bridge(bridge: &str) -> Result<()> {
    if link_exists(bridge) {
        ip(&["link", "del", bridge]).or_else(already_gone)?;
    }
    Ok(())
}

/// Cuts (`up = false`) or restores a region's only link to the rest of the machine.
pub fn set_region_link(link: &RegionLink, up: bool) -> Result<()> {
    ip(&[
        "link",
        "set",
        &link.host_veth,
        if up { "up" } else { "down" },
    ])?;
    Ok(())
}

/// Whether the region's link on the bridge is up (`None`: the link does not exist).
pub fn region_link_up(link: &RegionLink) -> Option<bool> {
    let flags = std::fs::read_to_string(
        Path::new("/sys/class/net")
            .join(&link.host_veth)
            .join("operstate"),
    )
    .ok()?;
    // A veth whose bridge side is administratively down reports "down"; both sides up report "up".
    Some(flags.trim() != "down")
}

/// A command that runs `program` inside `namespace` (through `ip netns exec`, which keeps the pid).
pub fn command_in(namespace: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", namespace]).arg(program);
    command
}
