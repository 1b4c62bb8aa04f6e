//! `storefront`: serve the shop API on a port (or to ALB events in Lambda), or apply the schema migrations.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use lifeboat_contract::exit;
use storefront::app::{self, ImagesSpec, PlatformDefaults, SessionsSpec, Settings};
use storefront::control::ControlSpec;
use storefront::credentials::CredentialSource;

#[derive(Parser)]
#[command(
    name = "storefront",
    version,
    about = "The lifeboat storefront: catalog, carts, checkout, orders."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    options: Options,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply the schema migrations to the database and exit (refused on a read-only database). Run it as the
    /// admin (master) user; with --app-user (or --app-secret-arn) it also creates the storefront's own user
    /// with only the privileges its queries need (SELECT, INSERT, UPDATE, DELETE on the shop's database).
    Migrate(MigrateArgs),
}

#[derive(clap::Args, Default)]
struct MigrateArgs {
    /// Name of the storefront's own database user to create or update.
    #[arg(long, env = "STOREFRONT_APP_USER")]
    app_user: Option<String>,
    /// Its password.
    #[arg(long, env = "STOREFRONT_APP_PASSWORD", hide_env_values = true)]
    app_password: Option<String>,
    /// Or: the Secrets Manager secret holding its `{"username", "password"}` (feature aws).
    #[arg(long, env = "DATABASE_APP_SECRET_ARN")]
    app_secret_arn: Option<String>,
    /// The host part of the user's account.
    #[arg(long, default_value = "%")]
    app_user_host: String,
}

#[derive(clap::Args)]
struct Options {
    /// Address to listen on.
    #[arg(
        long,
        env = "STOREFRONT_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    listen: SocketAddr,
    /// MySQL/MariaDB URL, e.g. mysql://user:password@127.0.0.1:3306/shop. Default (on AWS, feature aws): built
    /// from DATABASE_HOST, DATABASE_NAME and the credentials in the secret DATABASE_SECRET_ARN.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// A file whose first line is the database URL, re-read when the server refuses the credentials (a
    /// password rotation); instead of --database-url.
    #[arg(long, env = "DATABASE_URL_FILE", global = true)]
    database_url_file: Option<PathBuf>,
    /// The region this instance runs in, e.g. us-east-1.
    #[arg(long, env = "LIFEBOAT_REGION", global = true)]
    region: Option<String>,
    /// Control-plane source: static:<region>[:<epoch>], file:<path>, http://127.0.0.1:PORT,
    /// dynamodb:<table>[:<other region>] or ssm:<prefix>. Default (on AWS):
    /// dynamodb:$CONTROL_TABLE:$LIFEBOAT_PEER_REGION when CONTROL_TABLE is set, else ssm:$CONTROL_SSM_PREFIX
    /// when that is set, else static:<this region> (this region active, epoch 1).
    #[arg(long, env = "STOREFRONT_CONTROL", global = true)]
    control: Option<ControlSpec>,
    /// Cart store: mysql, or dynamodb:<table> (feature aws). Default: dynamodb:$SESSIONS_TABLE when that is
    /// set (on AWS), else mysql.
    #[arg(long, env = "STOREFRONT_SESSIONS", global = true)]
    sessions: Option<SessionsSpec>,
    /// Product images: local (served at /images/), or s3:<bucket>[/<prefix>] for presigned URLs (feature aws).
    /// Default: s3:$ASSETS_BUCKET/images when that is set (on AWS), else local.
    #[arg(long, env = "STOREFRONT_IMAGES", global = true)]
    images: Option<ImagesSpec>,
    /// Directory of product image files for local images.
    #[arg(long, env = "STOREFRONT_ASSETS_DIR", global = true)]
    assets_dir: Option<PathBuf>,
    /// Most database connections this instance opens.
    #[arg(
        long,
        env = "STOREFRONT_MAX_CONNECTIONS",
        default_value_t = 32,
        global = true
    )]
    max_connections: u32,
    /// The token health checkers send in `x-lifeboat-health-token` to get the full `/health/deep` report;
    /// everyone else gets the status and a minimal body. Unset (and no HEALTH_TOKEN_SECRET_ARN): everyone
    /// gets the full report.
    #[arg(long, env = "HEALTH_TOKEN", global = true, hide_env_values = true)]
    health_token: Option<String>,
    /// Secrets Manager secret holding the health token (feature aws); the platform sets it on AWS.
    #[arg(long, env = "HEALTH_TOKEN_SECRET_ARN", global = true)]
    health_token_secret_arn: Option<String>,
    /// How old the minimal `/health/deep` answer (without the token) may be, in seconds.
    #[arg(long, env = "HEALTH_CACHE_SECONDS", default_value_t = 5, global = true)]
    health_cache_seconds: u64,
    /// Log format.
    #[arg(long, env = "STOREFRONT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.options.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::INTERNAL as u8);
        }
    };
    let code = runtime.block_on(run(cli));
    ExitCode::from(code as u8)
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

async fn run(cli: Cli) -> i32 {
    let o = cli.options;
    // On AWS the platform describes the deployment in variables of its own; they fill in what is unset.
    let platform = match PlatformDefaults::from_lookup(|name| std::env::var(name).ok()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let mut credentials = CredentialSource::Fixed;
    let database_url = match (o.database_url, o.database_url_file, &platform.database) {
        (Some(url), _, _) => url,
        (None, Some(path), _) => {
            credentials = CredentialSource::UrlFile(path);
            match credentials.url().await {
                Ok(Some(url)) => url,
                Ok(None) => {
                    eprintln!("error: the database URL file is empty");
                    return exit::USAGE;
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return exit::USAGE;
                }
            }
        }
        (None, None, Some(database)) => {
            credentials = CredentialSource::Secret {
                database: database.clone(),
                region: o.region.clone(),
            };
            match app::database_url_from_secret(database, o.region.as_deref()).await {
                Ok(url) => url,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return exit::UNAVAILABLE;
                }
            }
        }
        (None, None, None) => {
            eprintln!(
                "error: no database; pass --database-url or set DATABASE_URL (or DATABASE_SECRET_ARN, DATABASE_HOST \
                 and DATABASE_NAME)"
            );
            return exit::USAGE;
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate(args) => {
            let app_user = match app_user(&args, o.region.as_deref()).await {
                Ok(user) => user,
                Err((code, message)) => {
                    eprintln!("error: {message}");
                    return code;
                }
            };
            migrate(&database_url, app_user.as_ref(), &args.app_user_host).await
        }
        Command::Serve => {
            let Some(region) = o.region else {
                eprintln!("error: no region; pass --region or set LIFEBOAT_REGION");
                return exit::USAGE;
            };
            let control = o
                .control
                .or(platform.control)
                .unwrap_or(ControlSpec::Static {
                    active_region: region.clone(),
                    epoch: 1,
                });
            let health_token = match (o.health_token, &o.health_token_secret_arn) {
                (Some(token), _) => Some(token),
                (None, Some(arn)) => match app::secret_string(arn, Some(&region)).await {
                    Ok(token) => Some(token.trim().to_owned()),
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        return exit::UNAVAILABLE;
                    }
                },
                (None, None) => None,
            };
            let settings = Settings {
                region,
                database_url,
                control,
                sessions: o
                    .sessions
                    .or(platform.sessions)
                    .unwrap_or(SessionsSpec::Mysql),
                images: o.images.or(platform.images).unwrap_or(ImagesSpec::Local),
                assets_dir: o.assets_dir,
                max_connections: o.max_connections,
                serve_metrics: !in_lambda(),
                credentials,
                health: app::HealthSettings {
                    token: health_token,
                    cache_for: std::time::Duration::from_secs(o.health_cache_seconds),
                },
            };
            match serve(settings, o.listen).await {
                Ok(()) => exit::OK,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "storefront stopped");
                    exit::INTERNAL
                }
            }
        }
    }
}

/// The storefront's own user from the flags or its secret, if one is asked for.
async fn app_user(
    args: &MigrateArgs,
    region: Option<&str>,
) -> Result<Option<storefront::db::AppUser>, (i32, String)> {
    match (&args.app_user, &args.app_password, &args.app_secret_arn) {
        (Some(name), Some(password), None) => Ok(Some(storefront::db::AppUser {
            name: name.clone(),
            password: password.clone(),
        })),
        (None, None, Some(arn)) => {
            let secret = app::secret_string(arn, region)
                .await
                .map_err(|e| (exit::UNAVAILABLE, format!("{e:#}")))?;
            #[derive(serde::Deserialize)]
            struct Credentials {
                username: String,
                password: String,
            }
            let c: Credentials = serde_json::from_str(&secret).map_err(|_| {
                (
                    exit::USAGE,
                    format!("the secret {arn} is not a JSON object with the strings username and password"),
                )
            })?;
            Ok(Some(storefront::db::AppUser {
                name: c.username,
                password: c.password,
            }))
        }
        (None, None, None) => Ok(None),
        _ => Err((
            exit::USAGE,
            "give --app-user with --app-password, or --app-secret-arn alone".into(),
        )),
    }
}

async fn migrate(
    database_url: &str,
    app_user: Option<&storefront::db::AppUser>,
    app_user_host: &str,
) -> i32 {
    let pool = match storefront::db::connect_lazy(database_url, 2) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("error: the database URL is not valid: {e}");
            return exit::USAGE;
        }
    };
    match storefront::db::is_read_only(&pool).await {
        Err(e) => {
            eprintln!("error: cannot reach the database: {e}");
            return exit::UNAVAILABLE;
        }
        Ok(true) => {
            eprintln!(
                "error: the database is read-only (a replica); migrate its primary, replication brings the schema"
            );
            return exit::REFUSED;
        }
        Ok(false) => {}
    }
    if let Err(e) = storefront::db::MIGRATOR.run(&pool).await {
        eprintln!("error: applying migrations: {e}");
        return exit::FAILED;
    }
    tracing::info!("migrations applied");
    let Some(user) = app_user else {
        return exit::OK;
    };
    let database = pool.connect_options().get_database().map(str::to_owned);
    let Some(database) = database else {
        eprintln!(
            "error: the database URL names no database; the storefront's user is granted on that one"
        );
        return exit::USAGE;
    };
    match storefront::db::create_app_user(&pool, &database, app_user_host, user).await {
        Ok(()) => {
            tracing::info!(user = %user.name, database = %database, "storefront database user ready");
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::FAILED
        }
    }
}

fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

async fn serve(settings: Settings, listen: SocketAddr) -> anyhow::Result<()> {
    let service = app::build(&settings).await?;
    let state = service.state;
    // A server renews the control state in the background, ahead of the writes. In Lambda each execution
    // environment renews on demand instead, at most once per lease however many requests it serves: a
    // background loop would read the control store four times a second in every busy environment
    // (docs/aws-dr.md, the read budget).
    let _refresher = (!in_lambda()).then(|| state.gate.spawn_refresher());
    let _preparation = app::spawn_database_preparation(state.pool.clone());
    let router = storefront::router(std::sync::Arc::clone(&state));
    tracing::info!(region = %state.region, control = %state.gate.source_description(), sessions = state.sessions.describe(), "storefront starting");

    if in_lambda() {
        return serve_lambda(router).await;
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(feature = "lambda")]
async fn serve_lambda(router: axum::Router) -> anyhow::Result<()> {
    lambda_http::run(router)
        .await
        .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"))
}

#[cfg(not(feature = "lambda"))]
async fn serve_lambda(_router: axum::Router) -> anyhow::Result<()> {
    anyhow::bail!(
        "started by the Lambda runtime, but this storefront was built without the `lambda` feature"
    )
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
