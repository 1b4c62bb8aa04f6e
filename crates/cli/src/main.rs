//! The `lifeboat` binary; the command line itself is the `lifeboat_cli` library.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

fn main() {
    std::process::exit(lifeboat_cli::run());
}
