//! Lambda deployment packages: what `lifeboat package` builds and the deploy engine uploads.
//!
//! Each package is a zip holding one executable named `bootstrap` (the `provided.al2023` runtime's
//! entry point). `package.json` beside them lists every zip with its size and sha256, so the deploy
//! engine can name the S3 object by content and skip unchanged uploads.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub mod elf;

/// Bumped on every incompatible change to [`PackageManifest`].
pub const PACKAGE_FORMAT_VERSION: u32 = 1;

/// The Lambda functions lifeboat deploys, and how each is built.
pub const LAMBDAS: &[LambdaSpec] = &[
    LambdaSpec {
        artifact: "storefront",
        package: "storefront",
        bin: "storefront",
        features: &["aws", "lambda"],
    },
    LambdaSpec {
        artifact: "dr-automation",
        package: "lifeboat-aws-dr",
        bin: "dr-automation",
        features: &[],
    },
];

/// The cross-compilation target: x86_64 Linux, glibc 2.17 (so the binary runs on any Amazon Linux).
pub const LAMBDA_TARGET: &str = "x86_64-unknown-linux-gnu.2.17";

/// The Cargo profile the functions are built with (the workspace's `Cargo.toml` says why it is set as it is).
pub const LAMBDA_PROFILE: &str = "lambda";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LambdaSpec {
    /// The artifact name the manifest's `ParameterSource::Artifact` uses; also the zip's stem.
    pub artifact: &'static str,
    /// Cargo package and binary.
    pub package: &'static str,
    pub bin: &'static str,
    /// Cargo features of `package` to enable.
    pub features: &'static [&'static str],
}

impl LambdaSpec {
    pub fn zip_name(&self) -> String {
        format!("{}.zip", self.artifact)
    }

    /// Where `cargo lambda build --lambda-dir DIR` leaves this function's executable.
    pub fn built_binary(&self, lambda_dir: &Path) -> PathBuf {
        lambda_dir.join(self.bin).join("bootstrap")
    }
}

/// `package.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageManifest {
    pub format_version: u32,
    /// The Lambda runtime the packages are built for.
    pub runtime: String,
    /// The Rust target triple (with the glibc version) they were built for.
    pub target: String,
    pub artifacts: Vec<PackagedArtifact>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackagedArtifact {
    /// `storefront` or `dr-automation`.
    pub name: String,
    /// The zip's file name, relative to `package.json`.
    pub file: String,
    /// sha256 of the zip, lower-case hex.
    pub sha256: String,
    pub bytes: u64,
    /// Size of the uncompressed `bootstrap` executable.
    pub bootstrap_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the zip {path}")]
    Zip {
        path: PathBuf,
        source: zip::result::ZipError,
    },
    #[error("reading the executable {path}")]
    NotExecutable {
        path: PathBuf,
        source: elf::ElfError,
    },
    #[error("{path} would not run on Lambda")]
    Unfit { path: PathBuf, source: elf::Unfit },
}

/// Reads a built function's executable and checks that it starts on Lambda ([`elf::check`]): x86_64, no
/// glibc newer than [`elf::GLIBC_FLOOR`], no debug sections. Returns what it read.
pub fn verify_bootstrap(binary: &Path) -> Result<elf::ElfFacts, PackageError> {
    let bytes = std::fs::read(binary).map_err(|source| PackageError::Read {
        path: binary.to_owned(),
        source,
    })?;
    let facts = elf::inspect(&bytes).map_err(|source| PackageError::NotExecutable {
        path: binary.to_owned(),
        source,
    })?;
    elf::check(&facts).map_err(|source| PackageError::Unfit {
        path: binary.to_owned(),
        source,
    })?;
    Ok(facts)
}

/// Writes `zip_path` holding `binary` as an executable `bootstrap`, deterministically (fixed timestamp,
/// fixed permissions), through a temporary file renamed into place. Returns the artifact entry.
pub fn write_lambda_zip(
    artifact: &str,
    binary: &Path,
    zip_path: &Path,
) -> Result<PackagedArtifact, PackageError> {
    let bytes = std::fs::read(binary).map_err(|source| PackageError::Read {
        path: binary.to_owned(),
        source,
    })?;
    let zip_err = |source: zip::result::ZipError| PackageError::Zip {
        path: zip_path.to_owned(),
        source,
    };
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            // zlib's best: every cold start downloads the zip, and this costs about a second per package
            // (levels above 9 are zopfli's, minutes for these sizes).
            .compression_level(Some(9))
            .unix_permissions(0o755)
            .last_modified_time(zip::DateTime::default());
        zip.start_file("bootstrap", options).map_err(zip_err)?;
        zip.write_all(&bytes)
            .map_err(|e| zip_err(zip::result::ZipError::Io(e)))?;
        zip.finish().map_err(zip_err)?;
    }
    let data = buffer.into_inner();
    write_atomically(zip_path, &data)?;
    Ok(PackagedArtifact {
        name: artifact.to_owned(),
        file: zip_path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        sha256: hex::encode(Sha256::digest(&data)),
        bytes: data.len() as u64,
        bootstrap_bytes: bytes.len() as u64,
    })
}

/// Writes `package.json` into `dir`.
pub fn write_manifest(
    dir: &Path,
    artifacts: Vec<PackagedArtifact>,
) -> Result<PackageManifest, PackageError> {
    let manifest = PackageManifest {
        format_version: PACKAGE_FORMAT_VERSION,
        runtime: "provided.al2023".into(),
        target: LAMBDA_TARGET.into(),
        artifacts,
    };
    let path = dir.join("package.json");
    let mut json = serde_json::to_vec_pretty(&manifest).map_err(|e| PackageError::Write {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    json.push(b'\n');
    write_atomically(&path, &json)?;
    Ok(manifest)
}

fn write_atomically(path: &Path, data: &[u8]) -> Result<(), PackageError> {
    let err = |source| PackageError::Write {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Finds `cargo-lambda`: on `PATH`, or in the tools virtualenv (`$LIFEBOAT_TOOLS_VENV`, default
/// `~/.cache/lifeboat-tools`) where `pip install cargo-lambda ziglang` puts it.
pub fn find_cargo_lambda(path_var: Option<&str>, tools_venv: Option<&Path>) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(venv) = tools_venv {
        dirs.push(venv.join("bin"));
    }
    if let Some(path) = path_var {
        dirs.extend(std::env::split_paths(path));
    }
    dirs.into_iter()
        .map(|d| d.join("cargo-lambda"))
        .find(|p| p.is_file())
}

/// How to install the build tools, for the message when they are missing.
pub fn install_hint(tools_venv: &Path) -> String {
    format!(
        "cargo-lambda is not installed. Install it (with zig, which it uses as the cross linker) from PyPI:\n\n    \
         python3 -m venv {venv}\n    {venv}/bin/pip install cargo-lambda ziglang\n\nthen run `lifeboat package` again.",
        venv = tools_venv.display()
    )
}

/// The `cargo lambda build` arguments that build every function in `specs` in one Cargo invocation (shared
/// dependencies compile once, with one feature set), writing each executable under `lambda_dir/<bin>/`.
/// Cargo's messages come as JSON lines on standard output (for the progress view), its diagnostics rendered
/// on standard error.
pub fn build_args(specs: &[LambdaSpec], lambda_dir: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "lambda",
        "build",
        "--profile",
        LAMBDA_PROFILE,
        "--target",
        LAMBDA_TARGET,
        "--quiet",
        "--message-format",
        "json-render-diagnostics",
        "--lambda-dir",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    args.push(lambda_dir.display().to_string());
    for spec in specs {
        args.extend(["--package".to_owned(), spec.package.to_owned()]);
    }
    for spec in specs {
        args.extend(["--bin".to_owned(), spec.bin.to_owned()]);
    }
    let features: Vec<String> = specs
        .iter()
        .flat_map(|spec| {
            spec.features
                .iter()
                .map(|f| format!("{}/{f}", spec.package))
        })
        .collect();
    if !features.is_empty() {
        args.extend(["--features".to_owned(), features.join(",")]);
    }
    args
}

/// What one line of Cargo's JSON messages (`--message-format json`) says about the build's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CargoMessage {
    /// A crate (library, binary or build script) finished compiling, or was fresh.
    Built { crate_name: String, fresh: bool },
    /// The build ended.
    Finished { success: bool },
    /// Anything else: diagnostics (rendered on standard error already), build-script output, ...
    Other,
}

impl CargoMessage {
    pub fn parse(line: &str) -> Self {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            return Self::Other;
        };
        match message.get("reason").and_then(serde_json::Value::as_str) {
            Some("compiler-artifact") => Self::Built {
                crate_name: message
                    .pointer("/target/name")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("?")
                    .to_owned(),
                fresh: message
                    .get("fresh")
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false),
            },
            Some("build-finished") => Self::Finished {
                success: message
                    .get("success")
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false),
            },
            _ => Self::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn zip_holds_one_executable_bootstrap_and_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("fake-binary");
        std::fs::write(&binary, b"\x7fELF not really a binary, but bytes to carry").unwrap();
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o644)).unwrap();
        let zip_path = dir.path().join("storefront.zip");
        let artifact = write_lambda_zip("storefront", &binary, &zip_path).unwrap();

        let data = std::fs::read(&zip_path).unwrap();
        assert_eq!(artifact.sha256, hex::encode(Sha256::digest(&data)));
        assert_eq!(artifact.bytes, data.len() as u64);
        assert_eq!(artifact.file, "storefront.zip");

        let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap(), "bootstrap");
        assert_eq!(
            entry.unix_mode().map(|m| m & 0o777),
            Some(0o755),
            "bootstrap must be executable"
        );
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        assert_eq!(content, std::fs::read(&binary).unwrap());
        drop(entry);

        // Same input, same bytes: the deploy engine keys uploads by this hash.
        let again = write_lambda_zip("storefront", &binary, &dir.path().join("again.zip")).unwrap();
        assert_eq!(again.sha256, artifact.sha256);
    }

    #[test]
    fn manifest_lists_every_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("b");
        std::fs::write(&binary, b"x").unwrap();
        let a =
            write_lambda_zip("storefront", &binary, &dir.path().join("storefront.zip")).unwrap();
        let b = write_lambda_zip(
            "dr-automation",
            &binary,
            &dir.path().join("dr-automation.zip"),
        )
        .unwrap();
        write_manifest(dir.path(), vec![a.clone(), b.clone()]).unwrap();
        let read: PackageManifest =
            serde_json::from_slice(&std::fs::read(dir.path().join("package.json")).unwrap())
                .unwrap();
        assert_eq!(read.artifacts, vec![a, b]);
        assert_eq!(read.runtime, "provided.al2023");
    }

    #[test]
    fn one_invocation_builds_every_function_with_its_own_features() {
        let args = build_args(LAMBDAS, Path::new("/tmp/l"));
        let joined = args.join(" ");
        assert!(
            joined.starts_with(
                "lambda build --profile lambda --target x86_64-unknown-linux-gnu.2.17"
            ),
            "{joined}"
        );
        assert!(
            joined.contains("--package storefront --package lifeboat-aws-dr"),
            "{joined}"
        );
        assert!(
            joined.contains("--bin storefront --bin dr-automation"),
            "{joined}"
        );
        assert!(
            joined.ends_with("--features storefront/aws,storefront/lambda"),
            "{joined}"
        );
        assert!(joined.contains("--message-format json-render-diagnostics"));
        let dr_only = build_args(&LAMBDAS[1..], Path::new("/tmp/l"));
        assert!(!dr_only.contains(&"--features".to_owned()), "{dr_only:?}");
        assert_eq!(
            LAMBDAS[0].built_binary(Path::new("/tmp/l")),
            Path::new("/tmp/l/storefront/bootstrap")
        );
    }

    #[test]
    fn cargo_messages_report_built_crates_and_the_end() {
        let built = r#"{"reason":"compiler-artifact","package_id":"x","target":{"kind":["lib"],"name":"aws_sdk_rds"},"fresh":false}"#;
        assert_eq!(
            CargoMessage::parse(built),
            CargoMessage::Built {
                crate_name: "aws_sdk_rds".into(),
                fresh: false
            }
        );
        assert_eq!(
            CargoMessage::parse(r#"{"reason":"build-finished","success":false}"#),
            CargoMessage::Finished { success: false }
        );
        assert_eq!(
            CargoMessage::parse(r#"{"reason":"compiler-message","message":{}}"#),
            CargoMessage::Other
        );
        assert_eq!(CargoMessage::parse("not json"), CargoMessage::Other);
    }

    #[test]
    fn cargo_lambda_is_found_in_the_tools_venv() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_cargo_lambda(Some(""), Some(dir.path())), None);
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/cargo-lambda"), b"").unwrap();
        assert_eq!(
            find_cargo_lambda(None, Some(dir.path())),
            Some(dir.path().join("bin/cargo-lambda"))
        );
        assert!(install_hint(dir.path()).contains("pip install cargo-lambda ziglang"));
    }
}
