//! `airlock convert`: PyTorch checkpoints (a file, a folder, a sharded checkpoint) to
//! safetensors, through `airlock::convert` — nothing in the checkpoint is ever executed.
//!
//! The input is vetted by a scanner with the same policy `scan` would use
//! ([`crate::policy::load`]: `--policy`, else `airlock.toml` found from the input upward,
//! then `--allow`), so `convert` accepts exactly what `scan` passes.

use std::io::Write;
use std::path::{Path, PathBuf};

use airlock::Scanner;
use airlock::convert::{self, Options, Plan, Progress, Summary};
use anyhow::{Context, Result, bail};
use clap::Args;

use crate::args::{GlobalArgs, PolicyArgs};
use crate::output::escape::escaped;
use crate::output::text::plural;
use crate::policy;

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// A checkpoint (`.bin`, `.pt`, `.pth`, `.ckpt`, any name: routed by content) or a model
    /// folder (every checkpoint in it, or a sharded checkpoint with its index).
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,

    /// Output file (for a folder: output folder). Default: beside the input, named as the
    /// Hub's converter names it (`pytorch_model.bin` → `model.safetensors`).
    #[arg(long, short = 'o', value_name = "OUTPUT")]
    pub output: Option<PathBuf>,

    /// Take the state dict from this top-level key (default: `state_dict`, `model_state_dict`,
    /// `model` or `module` when the top level has one, else the top level itself).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,

    /// Convert nested dicts with `.`-joined names instead of refusing them.
    #[arg(long)]
    pub flatten: bool,

    /// Drop plain non-tensor values (numbers, strings) instead of refusing them; they are listed.
    #[arg(long)]
    pub skip_non_tensors: bool,

    /// Write every name as its own copy instead of removing shared-storage aliases.
    #[arg(long)]
    pub no_dedup: bool,

    /// Replace existing output files.
    #[arg(long)]
    pub force: bool,

    /// After writing, compare every tensor's bytes with the checkpoint.
    #[arg(long)]
    pub verify: bool,

    /// Do not fsync outputs before renaming them into place: faster for scratch outputs, but a
    /// crash soon after can leave an empty or partial file under the final name.
    #[arg(long)]
    pub no_sync: bool,

    /// Print what would be written (names, dtypes, shapes, bytes, shared groups); write nothing.
    #[arg(long)]
    pub check: bool,

    /// Do not show a progress bar when converting a folder.
    #[arg(long)]
    pub no_progress: bool,

    #[command(flatten)]
    pub policy: PolicyArgs,
}

impl ConvertArgs {
    fn options(&self, scanner: Scanner) -> Options {
        Options {
            key: self.key.clone(),
            flatten: self.flatten,
            skip_non_tensors: self.skip_non_tensors,
            no_dedup: self.no_dedup,
            force: self.force,
            verify: self.verify,
            no_sync: self.no_sync,
            scanner: Some(scanner),
        }
    }
}

/// Runs the subcommand; any conversion error is returned (exit status 2).
pub fn run(args: &ConvertArgs, global: &GlobalArgs, out: &mut dyn Write) -> Result<()> {
    let loaded = policy::load(&args.policy, Some(&args.input), global.verbose)?;
    let options = args.options(Scanner::new(loaded.policy, airlock::Limits::default()));
    if args.input.is_dir() {
        return run_folder(args, &options, global.quiet, out);
    }
    if args.check {
        let plan = convert::plan_file(&args.input, &options)?;
        return print_plan(&plan, out);
    }
    let output = match &args.output {
        Some(o) => o.clone(),
        None => default_output(&args.input)?,
    };
    crate::outfile::guard_folder(folder_of(&output));
    let summary = convert::convert_file(&args.input, &output, &options)?;
    print_summary(&summary, out)
}

/// The folder a file is written in (`.` for a bare name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn default_output(input: &Path) -> Result<PathBuf> {
    let name = input
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: cannot name an output for it; use -o", input.display()))?;
    Ok(input.with_file_name(convert::safetensors_name(name)))
}

fn run_folder(
    args: &ConvertArgs,
    options: &Options,
    quiet: bool,
    out: &mut dyn Write,
) -> Result<()> {
    if args.check {
        let plans = convert::plan_folder(&args.input, options)?;
        if plans.is_empty() {
            bail!("{}: no checkpoints to convert", args.input.display());
        }
        for plan in plans {
            print_plan(&plan, out)?;
        }
        return Ok(());
    }
    let bar = if args.no_progress || quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    };
    crate::outfile::guard_folder(args.output.as_deref().unwrap_or(&args.input));
    let summary =
        convert::convert_folder(
            &args.input,
            args.output.as_deref(),
            options,
            &mut |p| match p {
                Progress::Start { total, input, .. } => {
                    bar.set_length(total as u64);
                    bar.set_message(escaped(&input.display().to_string()).into_owned());
                }
                Progress::Done { .. } => bar.inc(1),
            },
        );
    bar.finish_and_clear();
    let summary = summary?;
    for done in &summary.converted {
        print_summary(done, out)?;
    }
    if let Some(index) = &summary.index {
        line(out, format!("wrote {}", index.display()))?;
    }
    Ok(())
}

fn print_summary(s: &Summary, out: &mut dyn Write) -> Result<()> {
    let mut extra = Vec::new();
    let removed: usize = s.shared.iter().map(|g| g.removed.len()).sum();
    if removed > 0 {
        let aliases = if removed == 1 { "alias" } else { "aliases" };
        extra.push(format!("{removed} shared {aliases} recorded in metadata"));
    }
    if !s.skipped.is_empty() {
        let names: Vec<&str> = s.skipped.iter().map(|(n, _)| n.as_str()).collect();
        extra.push(format!("skipped {}", names.join(", ")));
    }
    if s.verified {
        extra.push("verified".into());
    }
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(" ({})", extra.join("; "))
    };
    line(
        out,
        format!(
            "converted {} → {}: {} {}, {} {}{extra}",
            s.input.display(),
            s.output.display(),
            s.tensors,
            plural(s.tensors, "tensor", "tensors"),
            s.bytes,
            plural(s.bytes, "byte", "bytes"),
        ),
    )?;
    Ok(())
}

fn print_plan(plan: &Plan, out: &mut dyn Write) -> Result<()> {
    let order = if plan.big_endian {
        "big-endian"
    } else {
        "little-endian"
    };
    let (tensors, bytes) = (plan.tensors.len(), plan.data_bytes());
    line(
        out,
        format!(
            "{} ({} format, {order}): {tensors} {}, {bytes} {} of data",
            plan.input.display(),
            plan.format,
            plural(tensors, "tensor", "tensors"),
            plural(bytes, "byte", "bytes"),
        ),
    )?;
    let width = plan.tensors.iter().map(|t| t.name.len()).max().unwrap_or(0);
    for t in &plan.tensors {
        let view = if t.is_contiguous() {
            ""
        } else {
            "  (view, made contiguous)"
        };
        line(
            out,
            format!(
                "  {:<width$}  {:<11} {:<18} {:>12}{view}",
                t.name,
                format!("{:?}", t.dtype),
                format!("{:?}", t.shape),
                t.nbytes
            ),
        )?;
    }
    for g in &plan.shared {
        line(
            out,
            format!(
                "  shared: {} kept; {} removed",
                g.kept,
                g.removed.join(", ")
            ),
        )?;
    }
    for (name, what) in &plan.skipped {
        line(out, format!("  skipped: {name} = {what}"))?;
    }
    Ok(())
}

/// Writes one line of text that may quote the checkpoint (tensor names, keys, paths), with its
/// control characters escaped.
fn line(out: &mut dyn Write, text: String) -> std::io::Result<()> {
    writeln!(out, "{}", escaped(&text))
}
