//! SDK clients for the two regions of an environment.
//!
//! Every service client is built once per region, on first use, from one shared [`aws_types::SdkConfig`].
//! An endpoint override (a local AWS emulator in tests) applies to every client; Route 53 is a global
//! service whose control plane answers in `us-east-1`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

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

/// The clients of one region. Each is built on first use: a task of the DR function needs two or three of
/// the eight, and building a client costs start-up time (about 4–6 ms for all of them here, docs/aws-dr.md).
#[derive(Debug, Clone)]
pub struct RegionClients {
    pub region: String,
    sdk: aws_types::SdkConfig,
    rds: OnceLock<aws_sdk_rds::Client>,
    ssm: OnceLock<aws_sdk_ssm::Client>,
    sns: OnceLock<aws_sdk_sns::Client>,
    cloudwatch: OnceLock<aws_sdk_cloudwatch::Client>,
    dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    lambda: OnceLock<aws_sdk_lambda::Client>,
    s3: OnceLock<aws_sdk_s3::Client>,
    sts: OnceLock<aws_sdk_sts::Client>,
}

impl RegionClients {
    pub fn new(region: &str, sdk: &aws_types::SdkConfig) -> Self {
        RegionClients {
            region: region.to_owned(),
            sdk: sdk.clone(),
            rds: OnceLock::new(),
            ssm: OnceLock::new(),
            sns: OnceLock::new(),
            cloudwatch: OnceLock::new(),
            dynamodb: OnceLock::new(),
            lambda: OnceLock::new(),
            s3: OnceLock::new(),
            sts: OnceLock::new(),
        }
    }

    pub fn s3(&self) -> &aws_sdk_s3::Client {
        self.s3.get_or_init(|| {
            // Path-style addressing works against emulators and AWS alike; virtual-hosted style needs DNS
            // for every bucket name.
            let config = aws_sdk_s3::config::Builder::from(&self.sdk)
                .force_path_style(true)
                .build();
            aws_sdk_s3::Client::from_conf(config)
        })
    }

    /// Uses `client` for S3 instead of the one [`RegionClients::s3`] would build (tests: a client with
    /// interceptors).
    pub fn set_s3(&mut self, client: aws_sdk_s3::Client) {
        self.s3 = OnceLock::from(client);
    }
}

/// The accessor (building the client from the region's configuration on first use) and the setter (a client
/// built elsewhere, for tests that add interceptors) of each client but S3's.
macro_rules! lazy_clients {
    ($($get:ident, $set:ident: $client:ty;)*) => {
        impl RegionClients {
            $(
                pub fn $get(&self) -> &$client {
                    self.$get.get_or_init(|| <$client>::new(&self.sdk))
                }

                pub fn $set(&mut self, client: $client) {
                    self.$get = OnceLock::from(client);
                }
            )*
        }
    };
}

lazy_clients! {
    rds, set_rds: aws_sdk_rds::Client;
    ssm, set_ssm: aws_sdk_ssm::Client;
    sns, set_sns: aws_sdk_sns::Client;
    cloudwatch, set_cloudwatch: aws_sdk_cloudwatch::Client;
    dynamodb, set_dynamodb: aws_sdk_dynamodb::Client;
    lambda, set_lambda: aws_sdk_lambda::Client;
    sts, set_sts: aws_sdk_sts::Client;
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
            c.sts().get_caller_identity().send().await.map_err(|e| {
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
