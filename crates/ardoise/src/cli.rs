//! The command line: `serve`, `demo`, `migrate`, `config print-default`,
//! `admin reset-code`, `surge`.

use crate::config::{Settings, DEFAULT_TOML};
use crate::demo;
use anyhow::Context;
use ardoise_core::{Clock, Login, Role, SystemClock};
use ardoise_store::Store;
use ardoise_web::AppState;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// Ardoise, a school digital workspace that holds at 9:15.
#[derive(Parser, Debug)]
#[command(name = "ardoise", version, about)]
pub struct Cli {
    /// Configuration file (default: ./ardoise.toml if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data folder (overrides the file and ARDOISE_DATA_DIR).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Database URL (overrides the file and ARDOISE_DATABASE_URL).
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serves the pages and the API.
    Serve {
        /// Address to listen on (overrides the file and ARDOISE_LISTEN).
        #[arg(long)]
        listen: Option<String>,
        /// Creates the demo school first if the database has none.
        #[arg(long)]
        demo: bool,
    },
    /// Creates the demo school (and more establishments for --pupils).
    Demo {
        /// How many pupils in all (200 per establishment).
        #[arg(long, default_value_t = 200)]
        pupils: usize,
        /// Seed of the generator: the same seed gives the same world.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
    /// Creates the database if needed and applies pending migrations.
    Migrate,
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Administration from the command line.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Replays the 9:15 wave against a running Ardoise on this machine
    /// (open-loop load generator; reads DATA_DIR/demo-accounts.csv).
    Surge(Box<crate::surge::SurgeArgs>),
    /// Measures fresh sign-ins against the raw password-hash rate, and
    /// remembered-session resumes against fresh sign-ins, on a running
    /// Ardoise on this machine (scripts/signin-bench.sh).
    SurgeSignin(crate::surge::signin::SignInArgs),
}

#[derive(Subcommand, Debug)]
enum ConfigAction {
    /// Prints the default configuration, with comments.
    PrintDefault,
}

#[derive(Subcommand, Debug)]
enum AdminAction {
    /// Gives an account a new activation code and prints it.
    ResetCode {
        /// The account's login.
        login: String,
    },
}

/// Runs the command line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref(), std::env::vars()) {
        Ok(mut s) => {
            if let Some(d) = &cli.data_dir {
                s.data_dir = d.clone();
            }
            if let Some(u) = &cli.database_url {
                s.database_url = u.clone();
            }
            s
        }
        Err(e) => {
            eprintln!("ardoise: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ardoise: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ardoise: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn open_store(settings: &Settings, create: bool) -> anyhow::Result<Store> {
    let (url, default_location) = settings.database();
    let store = Store::connect(
        &url,
        create || default_location,
        settings.database_max_connections,
    )
    .await
    .with_context(|| "cannot open the database")?;
    store.migrate().await.context("cannot apply migrations")?;
    Ok(store)
}

async fn run(command: Command, mut settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Config {
            action: ConfigAction::PrintDefault,
        } => {
            print!(
                "{DEFAULT_TOML}{}{}",
                crate::config::surge::DEFAULT_TOML,
                crate::config::documents::DEFAULT_TOML
            );
            Ok(())
        }
        Command::Surge(args) => crate::surge::run(*args, &settings.data_dir).await,
        Command::SurgeSignin(args) => crate::surge::signin::run(args, &settings.data_dir).await,
        Command::Migrate => {
            open_store(&settings, true).await?;
            println!("database ready: migrations applied");
            Ok(())
        }
        Command::Demo { pupils, seed } => {
            let store = open_store(&settings, true).await?;
            let done = run_demo(&store, &settings, pupils, seed).await;
            // Closing lets SQLite checkpoint its write-ahead log.
            store.close().await;
            done
        }
        Command::Admin {
            action: AdminAction::ResetCode { login },
        } => {
            let store = open_store(&settings, false).await?;
            let login = Login::parse(&login).map_err(|e| anyhow::anyhow!("{e}"))?;
            let person = store
                .find_person_by_login(&login)
                .await?
                .with_context(|| format!("no account with login {login}"))?;
            let code = ardoise_web::auth::new_activation_code();
            let expires = SystemClock.now() + settings.activation_days * 86400;
            store
                .set_activation_code(
                    person.id,
                    &ardoise_web::auth::activation_code_hash(&code),
                    expires,
                )
                .await?;
            store
                .record_audit(
                    SystemClock.now(),
                    None,
                    "activation_code_reset",
                    login.as_str(),
                    "command line",
                )
                .await?;
            println!("{login}: {code}");
            Ok(())
        }
        Command::Serve {
            listen,
            demo: with_demo,
        } => {
            if let Some(l) = listen {
                settings.listen = l;
            }
            let store = open_store(&settings, false).await?;
            if with_demo {
                run_demo(&store, &settings, demo::PUPILS_PER_ESTABLISHMENT, 2026).await?;
            }
            serve(store, settings).await
        }
    }
}

async fn run_demo(
    store: &Store,
    settings: &Settings,
    pupils: usize,
    seed: u64,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let world = demo::generate(pupils, seed);
    let csv = settings.demo_accounts_path();
    let report = demo::load(store, &world, &csv, SystemClock.now(), |step| {
        eprintln!("demo: {step}")
    })
    .await?;
    if report.already_there {
        println!("The demo school is already in this database.");
    } else {
        let files = ardoise_files::FileStore::open(&settings.files()?)
            .await
            .context("cannot open the file store")?;
        demo::load_documents(store, &files, &world, SystemClock.now()).await?;
        println!(
            "Demo created in {:.1} s: {} establishment(s), {} pupils, {} accounts; database size {:.1} MB.",
            started.elapsed().as_secs_f64(),
            report.establishments,
            report.pupils,
            report.people,
            store.size_bytes().await.unwrap_or(0) as f64 / 1e6
        );
    }
    println!(
        "Every demo account is listed in {} (login, password, roles, establishment, class).",
        csv.display()
    );
    println!("Sign in as:");
    for (role, i) in &world.named {
        let p = &world.people[*i];
        let label = match role {
            Role::Pupil => "pupil / élève",
            Role::Parent => "parent",
            Role::Teacher => "teacher / enseignant",
            Role::Staff => "staff / direction",
            Role::Admin => "administrator",
        };
        println!(
            "  {label:<22} login {:<28} password {}",
            p.login,
            demo::demo_password(*role)
        );
    }
    Ok(())
}

async fn serve(store: Store, settings: Settings) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let files_config = settings.files()?;
    let files = ardoise_files::FileStore::open(&files_config)
        .await
        .with_context(|| format!("cannot open the file store ({})", settings.files_backend))?;
    let state = AppState::new(store.clone(), files.clone(), clock.clone(), settings.web())
        .map_err(|e| anyhow::anyhow!(e))?;
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let stop = stop_signal();
    println!("Ardoise is serving on http://{addr}/ (Ctrl-C to stop)");
    let purge_clock = clock.clone();
    // Forget expired sessions once an hour.
    let sweeper_store = store.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            if let Err(e) = sweeper_store.delete_expired_sessions(clock.now()).await {
                tracing::warn!(error = %e, "could not sweep expired sessions");
            }
        }
    });
    // Remove blobs no row names (uploads refused after their bytes were
    // written, replaced hand-ins) once a day, keeping anything younger
    // than a day: a blob is written before the row that names it.
    // Documents trashed more than 30 days ago (by the app's clock) are
    // purged first, so that their blobs go in the same sweep.
    let blob_store = store.clone();
    let partials = state.partials.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(86_400));
        loop {
            tick.tick().await;
            // Uploads in pieces abandoned for a day.
            match partials.sweep(purge_clock.now()).await {
                Ok(n) => tracing::info!(uploads = n, "abandoned partial uploads removed"),
                Err(e) => tracing::warn!(error = ?e, "could not sweep partial uploads"),
            }
            let before = purge_clock.now() - ardoise_core::documents::TRASH_DAYS * 86_400;
            match blob_store.purge_trash(before).await {
                Ok(n) => tracing::info!(documents = n, "trash purged"),
                Err(e) => tracing::warn!(error = %e, "could not purge the trash"),
            }
            let referenced = match blob_store.referenced_blobs().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "could not list referenced blobs");
                    continue;
                }
            };
            match files
                .sweep(
                    |h| referenced.contains(h.as_str()),
                    std::time::Duration::from_secs(86_400),
                )
                .await
            {
                Ok(report) => tracing::info!(?report, "blob sweep"),
                Err(e) => tracing::warn!(error = %e, "blob sweep failed"),
            }
        }
    });
    ardoise_web::serve(listener, state, stop).await?;
    store.close().await;
    println!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (how service managers stop a process).
/// The handlers are installed when this is called, not when the future is
/// first polled: a SIGTERM sent as soon as the server says it is serving
/// must stop it cleanly, not kill it.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {},
                () = wait(terminate) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        println!("stopping: finishing requests in flight");
    }
}
