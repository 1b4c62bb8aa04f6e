//! The DR automation Lambda (`provided.al2023`, built by `lifeboat package`).
//!
//! Invoked by an EventBridge rule on "CloudWatch Alarm State Change" events of the environment's health
//! alarms. Reads its environment (see [`lifeboat_aws_dr::topology::from_env`]), asks the runbook policy
//! what to do and, when it says act, runs the switchover (and, only if configured, the failover) through
//! the engine. Logs are JSON lines; the function's answer says what was decided and done.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use lifeboat_aws_dr::{AwsEnvironment, Connection};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .without_time()
        .init();
    let (topology, settings) = lifeboat_aws_dr::topology::from_env(&|key| std::env::var(key).ok())
        .map_err(|e| format!("DR automation environment: {e}"))?;
    // The Lambda's own region coordinates: it is the one that is up when this runs.
    let own_region =
        std::env::var("AWS_REGION").unwrap_or_else(|_| topology.standby_region.clone());
    let env = AwsEnvironment::connect(&Connection::default(), topology, &own_region).await;
    let env = &env;
    let settings = &settings;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let answer = lifeboat_aws_dr::lambda::handle(env, settings, &event.payload).await;
        tracing::info!(answer = %answer, "done");
        Ok::<Value, Error>(answer)
    }))
    .await
}
