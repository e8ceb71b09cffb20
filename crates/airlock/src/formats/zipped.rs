//! Which kind of zip this is, decided the way the loaders decide it, and the scan of each
//! kind: a PyTorch checkpoint ([`super::torch_zip`]), a Keras v3 archive, a skops archive, an
//! `.npz`, or a plain zip. The zip reader ([`crate::containers::zip`]) only reads members and
//! reports anomalies; formats claim a zip here, in order: torch first (its loader looks for
//! `<root>/data.pkl` whatever else is there), then Keras (by its member names), then skops
//! (a `schema.json`), else npz or zip by the members' extensions.

use crate::containers::zip::{self, ZipArchive, ZipFlavour, zip_flavour};
use crate::containers::zip_image::SparseFile;
use crate::ctx::Ctx;
use crate::format::Format;

/// What a zip's top-level member names say it is, beyond torch and npz.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Keras v3 `.keras`: `config.json` and `metadata.json` are Keras JSON.
    Keras,
    /// skops: `schema.json` lists the types the loader will construct.
    Skops,
    Plain,
}

fn layout(archive: &ZipArchive) -> Layout {
    let names: Vec<&str> = archive
        .entries()
        .iter()
        .filter(|e| e.in_central)
        .map(|e| e.name.as_ref())
        .collect();
    if super::keras::is_keras_archive(&names) {
        Layout::Keras
    } else if names.contains(&"schema.json") {
        Layout::Skops
    } else {
        Layout::Plain
    }
}

/// Scans a zip: reports anomalies, then scans every member the way torch reads it, and also
/// the local-header reading where it differs. Returns "pytorch-zip", "torchscript", "keras",
/// "skops", "npz" or "zip". (A large PyTorch zip read from disk comes through
/// [`scan_torch_image`] instead.)
///
/// In a `.keras` archive, `config.json` and `metadata.json` are also read as Keras JSON; in a
/// skops archive, `schema.json` is checked against the policy. Those members (and all others)
/// are still scanned by content: the layout adds checks, it never replaces the content route.
pub fn scan(ctx: &mut Ctx, data: &[u8]) -> Format {
    scan_archive(ctx, &ZipArchive::parse(data))
}

/// [`scan`] of an archive already parsed (a llamafile's embedded zip, found after its
/// executable part).
pub fn scan_archive(ctx: &mut Ctx, archive: &ZipArchive<'_>) -> Format {
    archive.report_anomalies(ctx);
    let flavour = zip_flavour(archive);
    if flavour == ZipFlavour::TorchZip {
        return super::torch_zip::scan(ctx, archive);
    }
    let layout = layout(archive);
    let cut_jit_pickles = super::torch_zip::cut_archive_jit_pickles(archive);
    let notes_from = ctx.checkpoint();
    let mut weights = Vec::new();
    let mut members = 0usize;
    for entry in archive.entries() {
        if ctx.check_timeout() {
            break;
        }
        if entry.is_dir() && entry.compressed_size == 0 {
            continue;
        }
        members += 1;
        match (layout, entry.in_central, entry.name.as_ref()) {
            (Layout::Keras, true, "config.json") => {
                zip::scan_entry_with(archive, entry, ctx, scan_keras_config_member)
            }
            (Layout::Keras, true, "metadata.json") => {
                zip::scan_entry_with(archive, entry, ctx, scan_keras_metadata_member)
            }
            (Layout::Keras, true, name @ ("model.weights.h5" | "model.weights.npz")) => {
                zip::scan_entry_with(archive, entry, ctx, |ctx, data| {
                    let format = super::route(ctx, data);
                    weights.push(format!("weights `{name}` scanned as {format}"));
                    format
                })
            }
            (Layout::Skops, true, "schema.json") => {
                zip::scan_entry_with(archive, entry, ctx, scan_skops_schema_member)
            }
            _ => super::torch_zip::scan_cut_member(ctx, archive, entry, &cut_jit_pickles),
        }
    }
    if layout != Layout::Plain {
        // One phrase per thing the layout names; the members' own phrases (an HDF5 group
        // count, an array's shape) are left to their findings.
        let notes = ctx.take_notes(notes_from);
        for note in notes {
            if let Some(version) = note.strip_prefix("metadata.json: keras ") {
                ctx.note(format!("keras {version}"));
            } else if note.starts_with("config.json: ") || note.starts_with("skops schema: ") {
                ctx.note(note);
            }
        }
        weights.into_iter().for_each(|w| ctx.note(w));
    }
    ctx.note(format!("{members} members"));
    match (flavour, layout) {
        (_, Layout::Keras) => Format::Keras,
        (_, Layout::Skops) => Format::Skops,
        (ZipFlavour::Npz, Layout::Plain) => Format::Npz,
        (ZipFlavour::Generic | ZipFlavour::TorchZip, Layout::Plain) => Format::Zip,
    }
}

/// Scans the sparse image of a PyTorch zip (built only for zips of that flavour, see
/// [`crate::containers::zip_image`]) exactly as [`scan`] scans the whole file.
pub fn scan_torch_image(ctx: &mut Ctx, image: &SparseFile) -> Format {
    let archive = ZipArchive::parse(zip::ZipBytes::Sparse(image));
    archive.report_anomalies(ctx);
    super::torch_zip::scan(ctx, &archive)
}

fn scan_keras_config_member(ctx: &mut Ctx, data: &[u8]) -> Format {
    super::keras::scan_keras_json(ctx, data, "config.json");
    super::route_besides(ctx, data).unwrap_or(Format::KerasConfig)
}

fn scan_keras_metadata_member(ctx: &mut Ctx, data: &[u8]) -> Format {
    super::keras::scan_keras_json(ctx, data, "metadata.json");
    super::route_besides(ctx, data).unwrap_or(Format::KerasMetadata)
}

fn scan_skops_schema_member(ctx: &mut Ctx, data: &[u8]) -> Format {
    super::skops::check_skops_schema(ctx, data);
    super::route_besides(ctx, data).unwrap_or(Format::SkopsSchema)
}
