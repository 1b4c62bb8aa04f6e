//! Lambda deployment packages: what `lifeboat package` builds and the deploy engine uploads.
//!
//! Each package is a zip holding one executable named `bootstrap` (the `provided.al2023` runtime's
//! entry point). `package.json` beside them lists every zip with its size and sha256, so the deploy
//! engine can name the S3 object by content and skip unchanged uploads.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bumped on every incompatible change to [`PackageManifest`].
pub const PACKAGE_FORMAT_VERSION: u32 = 1;

/// The Lambda functions lifeboat deploys, and how each is built.
pub const LAMBDAS: &[LambdaSpec] = &[
    LambdaSpec {
        artifact: "storefront",
        package: "storefront",
        bin: "storefront",
        features: "aws,lambda",
    },
    LambdaSpec {
        artifact: "dr-automation",
        package: "lifeboat-aws-dr",
        bin: "dr-automation",
        features: "",
    },
];

/// The cross-compilation target: x86_64 Linux, glibc 2.17 (so the binary runs on any Amazon Linux).
pub const LAMBDA_TARGET: &str = "x86_64-unknown-linux-gnu.2.17";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LambdaSpec {
    /// The artifact name the manifest's `ParameterSource::Artifact` uses; also the zip's stem.
    pub artifact: &'static str,
    /// Cargo package and binary.
    pub package: &'static str,
    pub bin: &'static str,
    /// Cargo features to enable (comma-separated, may be empty).
    pub features: &'static str,
}

impl LambdaSpec {
    pub fn zip_name(&self) -> String {
        format!("{}.zip", self.artifact)
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
    #[error("writing the zip {path}: {detail}")]
    Zip { path: PathBuf, detail: String },
    #[error("stripping the debug information from {path}: {detail}")]
    Strip { path: PathBuf, detail: String },
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
    let zip_err = |detail: String| PackageError::Zip {
        path: zip_path.to_owned(),
        detail,
    };
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o755)
            .last_modified_time(zip::DateTime::default());
        zip.start_file("bootstrap", options)
            .map_err(|e| zip_err(e.to_string()))?;
        zip.write_all(&bytes).map_err(|e| zip_err(e.to_string()))?;
        zip.finish().map_err(|e| zip_err(e.to_string()))?;
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

/// Finds binutils' `strip` on `PATH`.
pub fn find_strip(path_var: Option<&str>) -> Option<PathBuf> {
    std::env::split_paths(path_var?)
        .map(|d| d.join("strip"))
        .find(|p| p.is_file())
}

/// Writes a copy of `binary` without its debug information to `stripped` (`strip --strip-debug`).
///
/// The release profile keeps line tables, which the host tools want for their backtraces; in a Lambda
/// package they are about two thirds of the bytes (the storefront's bootstrap: 82 MiB with them, 24 MiB
/// without), and every cold start downloads and maps them. Symbols stay, so a panic in a function's log
/// still names the functions it passed through.
pub fn strip_debug_info(strip: &Path, binary: &Path, stripped: &Path) -> Result<(), PackageError> {
    let failed = |detail: String| PackageError::Strip {
        path: binary.to_owned(),
        detail,
    };
    let output = std::process::Command::new(strip)
        .arg("--strip-debug")
        .arg("-o")
        .arg(stripped)
        .arg(binary)
        .output()
        .map_err(|e| failed(format!("running {}: {e}", strip.display())))?;
    if !output.status.success() {
        return Err(failed(format!(
            "{} exited with {}: {}",
            strip.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
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

/// The `cargo lambda build` arguments for one function, writing its binary under `lambda_dir/<bin>/`.
pub fn build_args(spec: &LambdaSpec, lambda_dir: &Path) -> Vec<String> {
    let mut args = vec![
        "lambda".to_owned(),
        "build".to_owned(),
        "--release".to_owned(),
        "--target".to_owned(),
        LAMBDA_TARGET.to_owned(),
        "--package".to_owned(),
        spec.package.to_owned(),
        "--bin".to_owned(),
        spec.bin.to_owned(),
        "--lambda-dir".to_owned(),
        lambda_dir.display().to_string(),
    ];
    if !spec.features.is_empty() {
        args.push("--features".to_owned());
        args.push(spec.features.to_owned());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn stripping_keeps_an_executable_and_drops_the_debug_information() {
        let path = std::env::var("PATH").unwrap_or_default();
        let strip = find_strip(Some(&path))
            .expect("binutils' strip is on PATH (Debian package binutils, which gcc depends on)");
        // This test's own executable: a debug build carries debug information for this crate.
        let binary = std::env::current_exe().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let stripped = dir.path().join("bootstrap");
        strip_debug_info(&strip, &binary, &stripped).unwrap();
        let before = std::fs::metadata(&binary).unwrap().len();
        let after = std::fs::read(&stripped).unwrap();
        assert_eq!(&after[..4], b"\x7fELF", "still an ELF executable");
        assert!(
            (after.len() as u64) < before,
            "{before} bytes before, {} after",
            after.len()
        );
        assert!(std::fs::metadata(&stripped).unwrap().permissions().mode() & 0o111 != 0);

        let not_elf = dir.path().join("not-elf");
        std::fs::write(&not_elf, b"plain text").unwrap();
        let err = strip_debug_info(&strip, &not_elf, &dir.path().join("out")).unwrap_err();
        assert!(err.to_string().contains("not-elf"), "{err}");
    }

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
    fn build_arguments_pin_the_target_and_features() {
        let args = build_args(&LAMBDAS[0], Path::new("/tmp/l"));
        let joined = args.join(" ");
        assert!(
            joined.contains("--target x86_64-unknown-linux-gnu.2.17"),
            "{joined}"
        );
        assert!(
            joined.contains("--package storefront --bin storefront"),
            "{joined}"
        );
        assert!(joined.ends_with("--features aws,lambda"), "{joined}");
        assert!(!build_args(&LAMBDAS[1], Path::new("/tmp/l")).contains(&"--features".to_owned()));
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
