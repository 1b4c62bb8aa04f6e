//! Load generator for the storefront (a benchmark, not a test).
//!
//!     cargo run --release -p storefront --example load -- --base http://127.0.0.1:8080 --scenario reads
//!     cargo run --release -p storefront --example load -- --base http://127.0.0.1:8080 --scenario checkouts
//!
//! `reads`: GET /products/{id} of random catalog products. `checkouts`: per iteration create a cart, add an item,
//! check out with a fresh Idempotency-Key; checkouts/s counts completed orders. Prints throughput and latency
//! percentiles; exits non-zero if any request failed.

use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use storefront::Client;

#[derive(Parser)]
struct Args {
    /// Base URL of the storefront.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    #[arg(long, value_enum, default_value_t = Scenario::Reads)]
    scenario: Scenario,
    /// Concurrent workers.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds to run after a 2 s warm-up.
    #[arg(long, default_value_t = 15)]
    duration: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Scenario {
    Reads,
    Checkouts,
}

#[derive(Default)]
struct Tally {
    /// Latency of the measured request, microseconds.
    latencies: Vec<u32>,
    /// Latency of a whole checkout flow (cart, item, checkout), microseconds.
    flows: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.base)?;
    let products = client.products().await?;
    anyhow::ensure!(
        !products.is_empty(),
        "the catalog at {} is empty",
        args.base
    );
    let ids: Vec<u64> = products.iter().map(|p| p.id).collect();
    // Idempotency keys unique to this run: a key reused from an earlier run would (rightly) answer 409.
    let run_id = uuid::Uuid::new_v4().simple().to_string();

    let warmup = Duration::from_secs(2);
    let measure = Duration::from_secs(args.duration);
    let start = Instant::now();
    let workers = (0..args.concurrency).map(|worker| {
        let client = client.clone();
        let ids = ids.clone();
        let scenario = args.scenario;
        let run_id = run_id.clone();
        tokio::spawn(async move {
            let mut tally = Tally::default();
            // xorshift: cheap, deterministic per worker, good enough to spread reads over the catalog.
            let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (worker as u64 + 1);
            let mut n = 0u64;
            loop {
                let now = start.elapsed();
                if now >= warmup + measure {
                    break;
                }
                let measured = now >= warmup;
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let product = ids[(seed % ids.len() as u64) as usize];
                let result = match scenario {
                    Scenario::Reads => {
                        let t = Instant::now();
                        client.product(product).await.map(|_| (t.elapsed(), None))
                    }
                    Scenario::Checkouts => {
                        n += 1;
                        checkout_flow(&client, product, &format!("load-{run_id}-{worker}-{n}"))
                            .await
                    }
                };
                if !measured {
                    continue;
                }
                match result {
                    Ok((latency, flow)) => {
                        tally.latencies.push(latency.as_micros() as u32);
                        if let Some(flow) = flow {
                            tally.flows.push(flow.as_micros() as u32);
                        }
                    }
                    Err(e) => {
                        tally.errors += 1;
                        tally.first_error.get_or_insert(e.to_string());
                    }
                }
            }
            tally
        })
    });
    let mut total = Tally::default();
    for worker in futures::future::join_all(workers).await {
        let t = worker?;
        total.latencies.extend(t.latencies);
        total.flows.extend(t.flows);
        total.errors += t.errors;
        if total.first_error.is_none() {
            total.first_error = t.first_error;
        }
    }

    let what = match args.scenario {
        Scenario::Reads => "product reads (GET /products/{id})",
        Scenario::Checkouts => {
            "checkouts (POST /checkout, each after POST /carts and POST /carts/{id}/items)"
        }
    };
    let secs = measure.as_secs_f64();
    println!(
        "{what}: concurrency {}, {} s measured after 2 s warm-up",
        args.concurrency, args.duration
    );
    println!("  completed   {:>10}", total.latencies.len());
    println!(
        "  per second  {:>10.0}",
        total.latencies.len() as f64 / secs
    );
    report("  latency", &mut total.latencies);
    if !total.flows.is_empty() {
        report("  whole flow", &mut total.flows);
    }
    println!("  errors      {:>10}", total.errors);
    if let Some(e) = total.first_error {
        println!("  first error: {e}");
        anyhow::bail!("{} requests failed", total.errors);
    }
    Ok(())
}

async fn checkout_flow(
    client: &Client,
    product: u64,
    key: &str,
) -> Result<(Duration, Option<Duration>), storefront::client::ClientError> {
    let flow = Instant::now();
    let cart = client.create_cart().await?.value;
    client.add_item(&cart.id, product, 1).await?;
    let t = Instant::now();
    client.checkout(&cart.id, key).await?;
    Ok((t.elapsed(), Some(flow.elapsed())))
}

fn report(label: &str, micros: &mut [u32]) {
    if micros.is_empty() {
        return;
    }
    micros.sort_unstable();
    let pct = |p: f64| {
        f64::from(micros[((micros.len() as f64 * p) as usize).min(micros.len() - 1)]) / 1000.0
    };
    println!(
        "{label}  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
}
