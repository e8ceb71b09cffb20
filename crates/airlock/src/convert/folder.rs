//! Converting a model folder: every checkpoint in it, or a sharded checkpoint
//! (`pytorch_model-0000x-of-0000N.bin` + `pytorch_model.bin.index.json`) into
//! `model-0000x-of-0000N.safetensors` + `model.safetensors.index.json` with the same weight
//! map, names renamed the way the Hub's converter renames them.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::write::Summary;
use super::{ConvertError, Options, Plan, convert_file, plan_file};

/// Extensions of the files a folder conversion picks up when there is no index.
pub const CHECKPOINT_EXTENSIONS: &[&str] = &["bin", "pt", "pth", "ckpt"];

/// Progress of a folder conversion, for a progress display.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// About to convert file `index` (from 1) of `total`.
    Start {
        index: usize,
        total: usize,
        input: &'a Path,
        output: &'a Path,
    },
    /// Finished it.
    Done {
        index: usize,
        total: usize,
        summary: &'a Summary,
    },
}

/// What a folder conversion wrote.
#[derive(Debug, Clone, Default)]
pub struct FolderSummary {
    pub converted: Vec<Summary>,
    /// The rewritten index of a sharded checkpoint.
    pub index: Option<PathBuf>,
}

/// The safetensors name of a checkpoint file: extension replaced, `pytorch_model` → `model`
/// (`pytorch_model-00001-of-00002.bin` → `model-00001-of-00002.safetensors`).
pub fn safetensors_name(name: &str) -> String {
    let stem = match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    };
    format!("{stem}.safetensors").replace("pytorch_model", "model")
}

/// The files a folder conversion would convert, and their outputs (in `out_dir`).
pub fn folder_jobs(dir: &Path, out_dir: &Path) -> Result<Jobs, ConvertError> {
    if let Some(index) = find_index(dir)? {
        return sharded_jobs(dir, out_dir, &index);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| ConvertError::io(dir, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| CHECKPOINT_EXTENSIONS.contains(&e))
        })
        .collect();
    files.sort();
    let pairs = files
        .into_iter()
        .map(|input| {
            let name = input
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let output = out_dir.join(safetensors_name(&name));
            (input, output)
        })
        .collect();
    Ok(Jobs { pairs, index: None })
}

/// Files to convert and, for a sharded checkpoint, the index to write.
#[derive(Debug, Clone)]
pub struct Jobs {
    pub pairs: Vec<(PathBuf, PathBuf)>,
    /// (output path, JSON) of the rewritten index.
    pub index: Option<(PathBuf, serde_json::Value)>,
}

fn find_index(dir: &Path) -> Result<Option<PathBuf>, ConvertError> {
    let preferred = dir.join("pytorch_model.bin.index.json");
    if preferred.is_file() {
        return Ok(Some(preferred));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| ConvertError::io(dir, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".bin.index.json") || n.ends_with(".pt.index.json"))
        })
        .collect();
    found.sort();
    Ok(found.into_iter().next())
}

fn sharded_jobs(dir: &Path, out_dir: &Path, index: &Path) -> Result<Jobs, ConvertError> {
    let bad = |why: String| ConvertError::NotACheckpoint {
        path: index.to_path_buf(),
        why,
    };
    let text = std::fs::read_to_string(index).map_err(|e| ConvertError::io(index, e))?;
    let mut json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let map = json
        .get_mut("weight_map")
        .and_then(|m| m.as_object_mut())
        .ok_or_else(|| bad("no `weight_map` object".into()))?;
    let mut shards = BTreeSet::new();
    for (name, file) in map.iter_mut() {
        let shard = file
            .as_str()
            .ok_or_else(|| bad(format!("`{name}` maps to a non-string")))?;
        // Shard names come from the file: they must stay inside the folder.
        if shard.is_empty() || shard.contains(['/', '\\']) || shard.starts_with('.') {
            return Err(bad(format!(
                "shard name {shard:?} is not a plain file name"
            )));
        }
        shards.insert(shard.to_string());
        *file = serde_json::Value::String(safetensors_name(shard));
    }
    let pairs = shards
        .iter()
        .map(|s| (dir.join(s), out_dir.join(safetensors_name(s))))
        .collect();
    let index_name = index
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out_index =
        out_dir.join(safetensors_name(index_name.trim_end_matches(".index.json")) + ".index.json");
    Ok(Jobs {
        pairs,
        index: Some((out_index, json)),
    })
}

/// Plans every file of a folder without writing (`--check`).
pub fn plan_folder(dir: &Path, options: &Options) -> Result<Vec<Plan>, ConvertError> {
    let jobs = folder_jobs(dir, dir)?;
    jobs.pairs
        .iter()
        .map(|(input, _)| plan_file(input, options))
        .collect()
}

/// Converts every checkpoint of `dir` into `out_dir` (the folder itself when `None`).
/// Stops at the first error; files converted before it stay converted.
pub fn convert_folder(
    dir: &Path,
    out_dir: Option<&Path>,
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<FolderSummary, ConvertError> {
    let out_dir = out_dir.unwrap_or(dir);
    std::fs::create_dir_all(out_dir).map_err(|e| ConvertError::io(out_dir, e))?;
    let jobs = folder_jobs(dir, out_dir)?;
    if jobs.pairs.is_empty() {
        return Err(ConvertError::NotACheckpoint {
            path: dir.to_path_buf(),
            why: "no .bin, .pt, .pth or .ckpt files and no *.bin.index.json".into(),
        });
    }
    if let Some((path, _)) = &jobs.index
        && !options.force
        && path.exists()
    {
        return Err(ConvertError::Exists { path: path.clone() });
    }
    let total = jobs.pairs.len();
    let mut summary = FolderSummary::default();
    for (i, (input, output)) in jobs.pairs.iter().enumerate() {
        progress(Progress::Start {
            index: i + 1,
            total,
            input,
            output,
        });
        let done = convert_file(input, output, options)?;
        progress(Progress::Done {
            index: i + 1,
            total,
            summary: &done,
        });
        summary.converted.push(done);
    }
    if let Some((path, json)) = jobs.index {
        write_index(&path, &json, options.force)?;
        summary.index = Some(path);
    }
    Ok(summary)
}

fn write_index(path: &Path, json: &serde_json::Value, force: bool) -> Result<(), ConvertError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp =
        super::write::output_temp_file(dir, ".index.").map_err(|e| ConvertError::io(dir, e))?;
    let text = serde_json::to_string_pretty(json).unwrap_or_default() + "\n";
    temp.write_all(text.as_bytes())
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| ConvertError::io(path, e))?;
    let persisted = if force {
        temp.persist(path).map(|_| ())
    } else {
        temp.persist_noclobber(path).map(|_| ())
    };
    persisted.map_err(|e| match e.error.kind() {
        std::io::ErrorKind::AlreadyExists => ConvertError::Exists {
            path: path.to_path_buf(),
        },
        _ => ConvertError::io(path, e.error),
    })
}
