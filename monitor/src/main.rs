//! `ssm-db-monitor`: parses flags, builds the collaborators, runs the library.
//!
//! Exit codes (also in the README):
//! - 0: success (daemon stopped by SIGTERM/SIGINT; `--once` with a writer
//!   published or already in place; `--plan` without a problem)
//! - 1: an unexpected error
//! - 2: bad flags or configuration
//! - 3: `--once`: an AWS call failed transiently (throttling, 5xx, network, timeout): try again later
//! - 4: `--once`: refused or denied: a parameter is missing or malformed, or AWS denied a call
//! - 5: `--once`: no writable instance, nothing published

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use ssm_db_monitor::{
    run, Aws, Config, Decision, Error, LogFormat, Metrics, Mode, Monitor, SystemClock,
};
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

/// Keeps the SSM parameters that ssm_db_config reads pointed at the RDS writer.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The TOML configuration file.
    #[arg(long, short, env = "SSM_DB_MONITOR_CONFIG")]
    config: PathBuf,
    /// Poll once and exit (for cron or a scheduled task); see the exit codes in the README.
    #[arg(long)]
    once: bool,
    /// Print what the monitor would do and why, and check the permissions it needs; change nothing, exit.
    #[arg(long, conflicts_with = "once")]
    plan: bool,
    /// Log the writes, promotions and fencing it would do instead of doing them.
    #[arg(long, env = "SSM_DB_MONITOR_DRY_RUN", value_parser = clap::builder::BoolishValueParser::new())]
    dry_run: bool,
    /// Seconds between polls (overrides poll_interval_secs).
    #[arg(long, env = "SSM_DB_MONITOR_POLL_INTERVAL_SECS")]
    poll_interval_secs: Option<f64>,
    /// Log format (overrides log_format).
    #[arg(long, env = "SSM_DB_MONITOR_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Log filter in tracing's EnvFilter syntax.
    #[arg(
        long,
        env = "SSM_DB_MONITOR_LOG",
        default_value = "warn,ssm_db_monitor=info"
    )]
    log: String,
    /// Serve Prometheus metrics on this loopback address (overrides metrics_addr).
    #[arg(long, env = "SSM_DB_MONITOR_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Send every AWS call to this URL (overrides endpoint_url; for emulators and tests).
    #[arg(long, env = "SSM_DB_MONITOR_ENDPOINT_URL")]
    endpoint_url: Option<String>,
}

const EXIT_UNEXPECTED: u8 = 1;
const EXIT_CONFIG: u8 = 2;
const EXIT_TRANSIENT: u8 = 3;
const EXIT_REFUSED: u8 = 4;
const EXIT_NO_WRITER: u8 = 5;

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ssm-db-monitor: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(e) = init_logging(config.log_format, &args.log) {
        eprintln!("ssm-db-monitor: {e:#}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(EXIT_UNEXPECTED);
        }
    };
    match runtime.block_on(start(args, config)) {
        Ok(code) => code,
        Err(e) => {
            error!(error = %format!("{e:#}"), "stopped");
            ExitCode::from(EXIT_UNEXPECTED)
        }
    }
}

fn load_config(args: &Args) -> Result<Config, Error> {
    let mut config = Config::from_file(&args.config)?;
    if let Some(v) = args.poll_interval_secs {
        config.poll_interval_secs = v;
    }
    if let Some(v) = args.log_format {
        config.log_format = v;
    }
    if let Some(v) = args.metrics_addr {
        config.metrics_addr = Some(v);
    }
    if let Some(v) = &args.endpoint_url {
        config.endpoint_url = Some(v.clone());
    }
    config.dry_run |= args.dry_run;
    config.validate()?;
    Ok(config)
}

fn init_logging(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter).with_context(|| {
        format!("--log / SSM_DB_MONITOR_LOG \"{filter}\" is not a valid filter")
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}

async fn start(args: Args, config: Config) -> anyhow::Result<ExitCode> {
    let metrics = Metrics::new();
    let metrics_task = match config.metrics_addr {
        Some(addr) if !args.plan => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on metrics_addr {addr}"))?;
            info!(%addr, "serving metrics at /metrics");
            Some(tokio::spawn(ssm_db_monitor::metrics::serve(
                listener,
                metrics.clone(),
            )))
        }
        _ => None,
    };
    let after_polls = config.promotion.after_polls.unwrap_or(1);
    if args.once && config.promotion.enabled && after_polls > 1 {
        warn!(
            after_polls,
            "--once keeps no state between runs, so it never sees consecutive polls and will not promote: run the daemon for promotion"
        );
    }
    let aws = match Aws::connect(&config).await {
        Ok(aws) => aws,
        Err(e) => {
            error!(error = %e, "stopped");
            return Ok(ExitCode::from(exit_code_for(&e)));
        }
    };
    // The real RDS plays RDS here; tests pass a stand-in that completes moto.
    let rds = aws.clone();
    let mode = if args.plan {
        Mode::Plan
    } else if config.dry_run {
        Mode::DryRun
    } else {
        Mode::Act
    };
    let checker = aws.clone();
    let mut monitor = Monitor::new(config, aws, rds, metrics, mode);
    let clock = SystemClock;
    if args.plan {
        return Ok(plan(&mut monitor, &checker).await);
    }

    let code = if args.once {
        let report = match monitor.poll(&clock).await {
            Ok(r) => r,
            Err(e) => {
                error!(error = %e, "poll failed");
                return Ok(ExitCode::from(exit_code_for(&e)));
            }
        };
        if let Some(e) = report.errors.first() {
            for e in &report.errors {
                error!(error = %e, "poll finished with an error");
            }
            ExitCode::from(exit_code_for(e))
        } else if matches!(report.plan.decision, Decision::NoWriter { .. }) {
            ExitCode::from(EXIT_NO_WRITER)
        } else {
            ExitCode::SUCCESS
        }
    } else {
        match run(&mut monitor, &clock, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(EXIT_CONFIG),
        }
    };
    if let Some(task) = metrics_task {
        task.abort();
    }
    Ok(code)
}

/// `--plan`: the decision and the problems of one poll that writes nothing,
/// then the permission check. Exits nonzero when either found a problem: a
/// read the monitor needs fails now, so the monitor would fail when it matters.
async fn plan(monitor: &mut Monitor<Aws>, aws: &Aws) -> ExitCode {
    // Written with write!, not print!: a reader that closes the pipe early
    // (`--plan | head`) ends the output, not the check (print! would panic).
    let mut out = std::io::stdout();
    let failure = match monitor.poll(&SystemClock).await {
        Ok(report) => {
            let _ = writeln!(out, "{}", report.plan);
            for e in &report.errors {
                let _ = writeln!(out, "problem: {e}");
            }
            report.errors.first().cloned()
        }
        Err(e) => {
            error!(error = %e, "poll failed");
            let _ = writeln!(out, "problem: {e}");
            Some(e)
        }
    };
    let access = ssm_db_monitor::access::check(monitor.config(), aws, monitor.rds()).await;
    let _ = write!(out, "{access}");
    let _ = out.flush();
    match failure.as_ref().or(access.first_failure()) {
        Some(e) => ExitCode::from(exit_code_for(e)),
        None => ExitCode::SUCCESS,
    }
}

fn exit_code_for(e: &Error) -> u8 {
    match e {
        Error::Config(_) => EXIT_CONFIG,
        e if e.is_transient() => EXIT_TRANSIENT,
        _ => EXIT_REFUSED,
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
    }
}
