//! SDK clients for the two regions of an environment.
//!
//! Every service client is built once per region from one shared [`aws_types::SdkConfig`]. An endpoint
//! override (a local AWS emulator in tests) applies to every client; Route 53 is a global service whose
//! control plane answers in `us-east-1`.

use std::collections::BTreeMap;

use aws_config::BehaviorVersion;
use aws_types::region::Region;

/// Where and as whom to talk to AWS.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// Send every request here instead of the regional AWS endpoints (a local emulator).
    pub endpoint_url: Option<String>,
    /// Static credentials `(access key id, secret)`; `None` uses the default provider chain (environment,
    /// profile, the Lambda execution role, ...).
    pub static_credentials: Option<(String, String)>,
}

impl Connection {
    /// A connection for a local emulator: its endpoint and throwaway static credentials.
    pub fn emulator(endpoint_url: &str) -> Self {
        Connection {
            endpoint_url: Some(endpoint_url.to_owned()),
            static_credentials: Some(("testing".into(), "testing".into())),
        }
    }

    /// The shared SDK configuration for `region`.
    pub async fn sdk_config(&self, region: &str) -> aws_types::SdkConfig {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_owned()));
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some((key, secret)) = &self.static_credentials {
            loader = loader.credentials_provider(aws_sdk_ssm::config::Credentials::new(
                key.clone(),
                secret.clone(),
                None,
                None,
                "lifeboat-static",
            ));
        }
        loader.load().await
    }
}

/// The clients of one region.
#[derive(Debug, Clone)]
pub struct RegionClients {
    pub region: String,
    pub rds: aws_sdk_rds::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sns: aws_sdk_sns::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub s3: aws_sdk_s3::Client,
    pub sts: aws_sdk_sts::Client,
}

impl RegionClients {
    pub fn new(region: &str, sdk: &aws_types::SdkConfig) -> Self {
        // Path-style addressing works against emulators and AWS alike; virtual-hosted style needs DNS
        // for every bucket name.
        let s3_config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build();
        RegionClients {
            region: region.to_owned(),
            rds: aws_sdk_rds::Client::new(sdk),
            ssm: aws_sdk_ssm::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            lambda: aws_sdk_lambda::Client::new(sdk),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sts: aws_sdk_sts::Client::new(sdk),
        }
    }
}

/// The clients of both regions plus Route 53.
#[derive(Debug, Clone)]
pub struct Clients {
    pub regions: BTreeMap<String, RegionClients>,
    pub route53: aws_sdk_route53::Client,
}

impl Clients {
    /// The AWS account these clients act in (STS GetCallerIdentity, which needs no permission:
    /// https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
    pub async fn account_id(&self) -> Result<String, lifeboat_runbook::BackendError> {
        let Some(c) = self.regions.values().next() else {
            return Err(lifeboat_runbook::BackendError::other(
                "no region clients to ask for the account id",
            ));
        };
        let identity =
            c.sts.get_caller_identity().send().await.map_err(|e| {
                crate::errors::sdk_error("reading the caller's account", &c.region, e)
            })?;
        identity.account.ok_or_else(|| {
            lifeboat_runbook::BackendError::other("GetCallerIdentity returned no account")
        })
    }

    /// Clients for `regions` (the environment's pair) over `connection`.
    pub async fn connect(connection: &Connection, regions: &[&str]) -> Self {
        let mut map = BTreeMap::new();
        for region in regions {
            let sdk = connection.sdk_config(region).await;
            map.insert((*region).to_owned(), RegionClients::new(region, &sdk));
        }
        let route53_sdk = connection.sdk_config("us-east-1").await;
        Clients {
            regions: map,
            route53: aws_sdk_route53::Client::new(&route53_sdk),
        }
    }

    /// The clients of `region`, or an error naming the regions this environment has.
    pub fn region(&self, region: &str) -> Result<&RegionClients, lifeboat_runbook::BackendError> {
        self.regions.get(region).ok_or_else(|| {
            lifeboat_runbook::BackendError::rejected(format!(
                "region {region} is not one of this environment's regions ({})",
                self.regions.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }
}
