//! Run reports in S3 (and, optionally, in a local directory as well).

use aws_sdk_s3::primitives::ByteStream;
use lifeboat_runbook::report::ReportError;
use lifeboat_runbook::{BoxFuture, FileReportSink, Report, ReportSink};

/// Uploads `<prefix><run id>/report.json` and `report.txt` to a bucket; with a local directory, writes
/// the same files there first (so a report survives an S3 outage and the operator has it at hand).
pub struct S3ReportSink {
    s3: aws_sdk_s3::Client,
    region: String,
    bucket: String,
    prefix: String,
    local: Option<FileReportSink>,
}

impl S3ReportSink {
    pub fn new(
        s3: aws_sdk_s3::Client,
        region: impl Into<String>,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Self {
        S3ReportSink {
            s3,
            region: region.into(),
            bucket: bucket.into(),
            prefix: prefix.into(),
            local: None,
        }
    }

    pub fn with_local_copy(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.local = Some(FileReportSink::new(dir));
        self
    }

    /// The object key of a run's JSON report.
    pub fn json_key(&self, run_id: &str) -> String {
        format!("{}{run_id}/report.json", self.prefix)
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        report: &Report,
    ) -> Result<(), ReportError> {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| ReportError {
                run: report.run_id.clone(),
                location: format!("s3://{}/{key} ({})", self.bucket, self.region),
                detail: crate::errors::describe(&e).to_string(),
            })?;
        Ok(())
    }
}

impl ReportSink for S3ReportSink {
    fn store<'a>(&'a self, report: &'a Report) -> BoxFuture<'a, Result<String, ReportError>> {
        Box::pin(async move {
            let local = match &self.local {
                Some(sink) => Some(sink.store(report).await?),
                None => None,
            };
            let json = serde_json::to_vec_pretty(report).map_err(|e| ReportError {
                run: report.run_id.clone(),
                location: "report encoding".into(),
                detail: e.to_string(),
            })?;
            let json_key = self.json_key(report.run_id.as_str());
            self.put(&json_key, json, "application/json", report)
                .await?;
            let text_key = format!("{}{}/report.txt", self.prefix, report.run_id);
            self.put(
                &text_key,
                report.render_text().into_bytes(),
                "text/plain; charset=utf-8",
                report,
            )
            .await?;
            let remote = format!("s3://{}/{json_key}", self.bucket);
            Ok(match local {
                Some(path) => format!("{remote} and {path}"),
                None => remote,
            })
        })
    }
}
