//! The `airlock` command: glue between the arguments, the subcommands and the exit status.

mod args;
mod commands;
mod exit_status;
mod outfile;
mod output;
mod policy;
mod size;
mod stream;
mod walk;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
use exit_status::ExitStatus;
use output::escape::escaped;

fn main() -> ExitCode {
    keep_freed_heap();
    let cli = Cli::parse(); // usage errors exit 2, --help and --version exit 0
    match run(&cli) {
        Ok(status) => status.into(),
        // `scan` returns its own status on a broken pipe; `rules`, `explain` and `convert`
        // succeed whenever they get as far as writing.
        Err(error) if commands::scan::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            print_error(&error);
            ExitStatus::Error.into()
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitStatus> {
    match &cli.command {
        Command::Scan(args) => commands::scan::run(args, &cli.global),
        Command::Rules(args) => {
            let stdout = std::io::stdout();
            let color = commands::scan::wants_color(cli.global.color, &stdout);
            let mut out = std::io::BufWriter::new(stdout.lock());
            let status = commands::rules::run(args.code.as_deref(), &mut out, color)?;
            out.flush()?;
            Ok(status)
        }
        Command::Convert(args) => {
            let mut out = std::io::stdout().lock();
            commands::convert::run(args, &cli.global, &mut out)?;
            Ok(ExitStatus::Success)
        }
        Command::Explain(args) => {
            let stdout = std::io::stdout();
            let color = commands::scan::wants_color(cli.global.color, &stdout);
            let mut out = std::io::BufWriter::new(stdout.lock());
            let status = commands::explain::run(args, &cli.global, &mut out, color)?;
            out.flush()?;
            Ok(status)
        }
    }
}

/// `error: <top>` then one `  caused by: <cause>` line per underlying error.
fn print_error(error: &anyhow::Error) {
    let red = anstyle::Style::new()
        .fg_color(Some(anstyle::AnsiColor::Red.into()))
        .bold();
    // Errors quote paths and names from the command line and the input: escaped like the
    // text report.
    anstream::eprintln!("{red}error{red:#}: {}", escaped(&error.to_string()));
    let mut shown = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        // Many errors repeat their source in their own message; print each text once.
        if !shown.contains(&text) {
            anstream::eprintln!("  caused by: {}", escaped(&text));
        }
        shown = text;
    }
}

/// glibc gives memory freed at the top of the heap back to the kernel once 128 KiB of it is
/// free, so every file of a folder scan (and every phase of one checkpoint's scan) faults
/// its working memory in again page by page; on the 2-core VM of `bench/`, those faults are
/// a tenth of the time of scanning a 1 GB checkpoint and of a folder of 2,000 small pickles.
/// A 16 MiB pad keeps that much of freed heap mapped (untouched pad is not resident: peak
/// RSS grew by 0.5 MB there). Called before any other thread exists.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_heap() {
    // SAFETY: mallopt only sets a tunable of the allocator; no allocation is in flight and
    // the process is still single-threaded.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 16 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_heap() {}
