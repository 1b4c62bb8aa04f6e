//! Product images: files served by this service locally, presigned S3 URLs on AWS (feature `aws`).

use std::path::PathBuf;

pub enum Images {
    /// Served at `/images/{key}` from a directory; demo products without a file get a drawn placeholder.
    Local { dir: Option<PathBuf> },
    /// Presigned GET URLs for `{prefix}{key}` in a bucket.
    #[cfg(feature = "aws")]
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        prefix: String,
        expires: std::time::Duration,
    },
}

impl Images {
    pub async fn url_for(&self, key: &str) -> String {
        match self {
            Self::Local { .. } => format!("/images/{key}"),
            #[cfg(feature = "aws")]
            Self::S3 {
                client,
                bucket,
                prefix,
                expires,
            } => {
                let presigning =
                    match aws_sdk_s3::presigning::PresigningConfig::expires_in(*expires) {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::error!(error = %e, "invalid presigning duration");
                            return String::new();
                        }
                    };
                match client
                    .get_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{key}"))
                    .presigned(presigning)
                    .await
                {
                    Ok(request) => request.uri().to_owned(),
                    Err(e) => {
                        tracing::error!(key, error = %aws_sdk_s3::error::DisplayErrorContext(e), "cannot presign an image URL");
                        String::new()
                    }
                }
            }
        }
    }

    /// The bytes and content type of a local image; None when there is none (or images are on S3).
    pub async fn load_local(&self, name: &str) -> Option<(&'static str, Vec<u8>)> {
        #[cfg_attr(not(feature = "aws"), allow(irrefutable_let_patterns))]
        let Self::Local { dir } = self else {
            return None;
        };
        if !safe_file_name(name) {
            return None;
        }
        if let Some(dir) = dir
            && let Ok(bytes) = tokio::fs::read(dir.join(name)).await
        {
            return Some((content_type(name), bytes));
        }
        let sku = name.strip_suffix(".svg")?;
        let product = crate::db::DEMO_CATALOG.iter().find(|p| p.sku == sku)?;
        Some((
            "image/svg+xml",
            placeholder_svg(product.name, product.id).into_bytes(),
        ))
    }
}

/// One path component of plain characters: no separators, no leading dot, so no way out of the directory.
fn safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn content_type(name: &str) -> &'static str {
    match name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .as_deref()
    {
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        _ => "application/octet-stream",
    }
}

fn placeholder_svg(title: &str, seed: u64) -> String {
    let hue = (seed * 47) % 360;
    let title = title
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"320\" height=\"240\" viewBox=\"0 0 320 240\">\
         <rect width=\"320\" height=\"240\" fill=\"hsl({hue},60%,45%)\"/>\
         <text x=\"160\" y=\"128\" font-family=\"sans-serif\" font-size=\"18\" fill=\"#fff\" text-anchor=\"middle\">{title}</text>\
         </svg>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_files_from_the_directory_and_refuses_traversal() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("boat.png"), b"PNG").unwrap();
        let images = Images::Local {
            dir: Some(dir.path().to_owned()),
        };
        assert_eq!(
            images.load_local("boat.png").await,
            Some(("image/png", b"PNG".to_vec()))
        );
        assert_eq!(images.load_local("../boat.png").await, None);
        assert_eq!(images.load_local(".hidden").await, None);
        assert_eq!(images.load_local("missing.png").await, None);
        assert_eq!(images.url_for("boat.png").await, "/images/boat.png");
    }

    #[tokio::test]
    async fn demo_products_get_a_placeholder() {
        let images = Images::Local { dir: None };
        let (kind, bytes) = images.load_local("whistle.svg").await.unwrap();
        assert_eq!(kind, "image/svg+xml");
        assert!(String::from_utf8(bytes).unwrap().contains("Safety whistle"));
    }
}
