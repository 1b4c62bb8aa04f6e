//! The `lifeboat` binary; the command line itself is the `lifeboat_cli` library.

fn main() {
    std::process::exit(lifeboat_cli::run());
}
