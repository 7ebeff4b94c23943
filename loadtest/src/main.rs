//! `switchboard-loadtest`: parse the command line, run the scenario (or serve as a worker
//! process), print the summary, write `--json`, and exit 0 (ok), 1 (failed) or 2 (messages lost,
//! duplicated or reordered).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use switchboard_loadtest::cli::{Cli, Command};
use switchboard_loadtest::{run, summary, workers};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Worker = cli.command {
        return match workers::serve_stdio().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("worker: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Command::Chaos { .. } = cli.command {
        let Some((opts, json)) = cli.command.into_chaos() else {
            return ExitCode::FAILURE;
        };
        let report = match switchboard_loadtest::chaos::run(opts).await {
            Ok(report) => report,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        print!("{}", report.render());
        if let Some(path) = json {
            let written = serde_json::to_vec_pretty(&report)
                .map_err(std::io::Error::other)
                .and_then(|bytes| std::fs::write(&path, bytes));
            if let Err(e) = written {
                eprintln!("error: writing {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
        return if report.ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        };
    }
    let progress = std::io::stderr().is_terminal();
    if let Command::Abuse { .. } = cli.command {
        let Some((opts, attackers, json)) = cli.command.into_abuse(progress) else {
            return ExitCode::FAILURE;
        };
        let report = match switchboard_loadtest::abuse::run(opts, attackers).await {
            Ok(report) => report,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        print!("{}", report.render());
        if let Some(path) = json {
            if let Err(e) = std::fs::write(&path, report.to_json()) {
                eprintln!("error: writing {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::from(report.exit_code() as u8);
    }
    let (opts, json) = cli
        .command
        .into_options(progress)
        .expect("not the worker command");
    let report = match run(opts).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", summary::render(&report));
    if let Some(path) = json {
        if let Err(e) = std::fs::write(&path, report.to_json()) {
            eprintln!("error: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::from(report.exit_code() as u8)
}
