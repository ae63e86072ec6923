//! A search spread over machines: each shard trains its share of the (grid point, fold)
//! models as one stacked job and writes their scores to a file; a merge reads every shard's
//! file, ranks the grid and refits the winner. Sharded and merged gives the unsharded
//! search's results exactly (each model's score does not depend on what it was stacked
//! with). The share of shard i of N is every N-th model from the i-th, so shards get
//! similar mixes of points. A model that diverged or stalled is written with a NaN score and
//! what happened, and the merge treats its point as a failed candidate, as `fit` does.

use std::fmt::Write as _;
use std::path::Path;

use super::plan::Plan;
use super::scored::Scored;
use super::{CvReport, GridSearchCv, Scoring};
use crate::error::{Error, Result};
use crate::train::GpuDataset;

/// Shard `index` of `count` (0-based), e.g. one task of a Slurm job array or one pod of a
/// Kubernetes Indexed Job.
///
/// ```
/// use wgpu_mlp::cv::Shard;
/// let shard = Shard::parse("2/3")?;
/// assert_eq!((shard.index, shard.count), (2, 3));
/// # Ok::<(), wgpu_mlp::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which share, `0..count`.
    pub index: usize,
    /// How many shares.
    pub count: usize,
}

impl Shard {
    /// `i/N`, or `N` alone with the index from `SLURM_ARRAY_TASK_ID` (a Slurm job array with
    /// `--array=0-(N-1)`) or `JOB_COMPLETION_INDEX` (a Kubernetes Indexed Job).
    pub fn parse(text: &str) -> Result<Shard> {
        const OP: &str = "Shard::parse";
        let number = |what: &str, value: &str| {
            value
                .trim()
                .parse::<usize>()
                .map_err(|_| Error::invalid(OP, what.to_string(), "a non-negative integer", format!("{value:?}")))
        };
        let (index, count) = match text.split_once('/') {
            Some((index, count)) => (number("shard index", index)?, number("shard count", count)?),
            None => {
                let from_env = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"]
                    .iter()
                    .find_map(|name| std::env::var(name).ok().map(|value| (*name, value)));
                let Some((name, value)) = from_env else {
                    return Err(Error::invalid(
                        OP,
                        "shard",
                        "i/N, or N with SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX set",
                        format!("{text:?} and neither variable set"),
                    ));
                };
                (number(name, &value)?, number("shard count", text)?)
            }
        };
        if index >= count {
            return Err(Error::invalid(OP, "shard", "index < count", format!("{index}/{count}")));
        }
        Ok(Shard { index, count })
    }

    fn owns(self, model: usize) -> bool {
        model % self.count == self.index
    }
}

/// What one shard scored: a fold score and a fit time per model of its share, with what
/// identifies the search (grid size, folds, scoring, a fingerprint of the grid's points).
/// Equality compares the scores and times bit for bit (a NaN score equals itself).
#[derive(Clone, Debug)]
pub struct ShardScores {
    /// Which shard.
    pub shard: Shard,
    /// Grid points and folds of the whole search.
    pub points: usize,
    /// Folds of the whole search.
    pub folds: usize,
    /// How the folds were scored.
    pub scoring: Scoring,
    /// A hash of every grid point's settings: merging shards of another search is refused.
    pub grid_fingerprint: u64,
    /// (point, fold, score, seconds) of each model this shard trained; the score is NaN for
    /// a model whose training failed.
    pub models: Vec<(usize, usize, f32, f64)>,
    /// (point, fold, what happened) of each model of `models` whose training diverged or
    /// stalled (as [`FoldFailure::reason`](super::FoldFailure::reason)).
    pub failures: Vec<(usize, usize, String)>,
}

impl PartialEq for ShardScores {
    fn eq(&self, other: &Self) -> bool {
        let identity = |s: &ShardScores| (s.shard, s.points, s.folds, s.scoring, s.grid_fingerprint);
        let bits = |s: &ShardScores| -> Vec<(usize, usize, u32, u64)> {
            s.models
                .iter()
                .map(|&(p, k, score, seconds)| (p, k, score.to_bits(), seconds.to_bits()))
                .collect()
        };
        identity(self) == identity(other) && self.failures == other.failures && bits(self) == bits(other)
    }
}

impl GridSearchCv {
    /// Trains and scores this shard's share of the search's (point, fold) models (stacked,
    /// as [`GridSearchCv::fit`] does) and returns their scores, for
    /// [`GridSearchCv::merge_shards`]. Run the same search with every shard, on any
    /// machines; the data and rows must be the same.
    ///
    /// ```no_run
    /// # fn demo(search: &wgpu_mlp::GridSearchCv, data: &wgpu_mlp::GpuDataset, train: &[usize]) -> wgpu_mlp::Result<()> {
    /// let mine = search.fit_shard(data, train, wgpu_mlp::cv::Shard::parse("4")?)?; // index from Slurm
    /// mine.write(format!("results/shard-{}.csv", mine.shard.index))?;
    /// # Ok(()) }
    /// ```
    pub fn fit_shard(&self, data: &GpuDataset, rows: &[usize], shard: Shard) -> Result<ShardScores> {
        let plan = self.plan(data, rows)?;
        let pairs: Vec<(usize, usize)> = plan
            .all_pairs()
            .into_iter()
            .enumerate()
            .filter(|&(i, _)| shard.owns(i))
            .map(|(_, pair)| pair)
            .collect();
        let scored = crate::device::gpu::block_on("a shard", self.score(data, &plan, &pairs, &mut |_| {}))?;
        let models = pairs
            .iter()
            .map(|&(p, k)| (p, k, scored.fold_scores[p][k], scored.fit_times[p][k]))
            .collect();
        let failures = pairs
            .iter()
            .filter_map(|&(p, k)| scored.failures[p][k].clone().map(|reason| (p, k, reason)))
            .collect();
        Ok(ShardScores {
            shard,
            points: plan.points.len(),
            folds: plan.folds.len(),
            scoring: plan.scoring,
            grid_fingerprint: fingerprint(&plan),
            models,
            failures,
        })
    }

    /// Ranks the grid from every shard's scores and refits the winner on `rows` (with
    /// `refit`): the report [`GridSearchCv::fit`] gives, but for the fit times and the
    /// stacked runs it lists (none). A model a shard marks failed makes its point a failed
    /// candidate; if every point failed, an error naming the first failure. Refused, naming
    /// what is wrong, if a shard is missing, doubled, or from another search.
    pub fn merge_shards(&self, data: &GpuDataset, rows: &[usize], shards: &[ShardScores]) -> Result<CvReport> {
        const OP: &str = "GridSearchCv::merge_shards";
        let plan = self.plan(data, rows)?;
        let mut scored = Scored::new(
            plan.points.len(),
            plan.folds.len(),
            (plan.scoring, plan.configs[0].loss),
        );
        let mut seen = vec![vec![false; plan.folds.len()]; plan.points.len()];
        for shard in shards {
            let same = (shard.points, shard.folds, shard.scoring, shard.grid_fingerprint)
                == (plan.points.len(), plan.folds.len(), plan.scoring, fingerprint(&plan));
            if !same {
                return Err(Error::invalid(
                    OP,
                    format!("shard {}/{}", shard.shard.index, shard.shard.count),
                    format!(
                        "{} points × {} folds of this search",
                        plan.points.len(),
                        plan.folds.len()
                    ),
                    "scores of another search (other grid, folds or data): run every shard with the same options",
                ));
            }
            for &(p, k, score, seconds) in &shard.models {
                if p >= plan.points.len() || k >= plan.folds.len() || std::mem::replace(&mut seen[p][k], true) {
                    return Err(Error::invalid(
                        OP,
                        "model",
                        "each (point, fold) once",
                        format!("({p}, {k}) again"),
                    ));
                }
                scored.fold_scores[p][k] = score;
                scored.fit_times[p][k] = seconds;
            }
            for (p, k, reason) in &shard.failures {
                if seen.get(*p).and_then(|folds| folds.get(*k)) != Some(&true) {
                    return Err(Error::invalid(
                        OP,
                        "failure",
                        "a failure of a model the shard scored",
                        format!("({p}, {k})"),
                    ));
                }
                scored.fail((*p, *k), reason.clone());
            }
        }
        if let Some(p) = seen.iter().position(|folds| folds.contains(&false)) {
            let k = seen[p].iter().position(|&s| !s).unwrap_or(0);
            return Err(Error::invalid(
                OP,
                "shards",
                "every (point, fold) model scored",
                format!("none for point {p}, fold {k}: a shard is missing"),
            ));
        }
        crate::device::gpu::block_on("merging shards", self.finish(data, rows, &plan, scored, &mut |_| {}))
    }
}

/// FNV-1a over every point's settings and the folds' row counts.
fn fingerprint(plan: &Plan) -> u64 {
    let mut text = String::new();
    for point in &plan.points {
        let _ = writeln!(text, "{point}");
    }
    for fold in &plan.folds {
        let _ = writeln!(text, "{} {}", fold.train.len(), fold.validation.len());
    }
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

impl ShardScores {
    /// As CSV: a `#` line with the shard and the search's identity, then
    /// `point,fold,score,seconds,failure` rows (scores in the shortest text that reads back
    /// to the same bits, `NaN` for a failed model; `failure` what happened, empty for a model
    /// that trained). Written whole to a temporary file, then renamed.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let scoring = self.scoring.name();
        let mut text = format!(
            "# wgpu-mlp shard {}/{} points={} folds={} scoring={scoring} grid={:016x}\n",
            self.shard.index, self.shard.count, self.points, self.folds, self.grid_fingerprint
        );
        text.push_str(&self.rows_csv());
        let io = |source| Error::Io {
            file: path.display().to_string(),
            source,
        };
        let temporary = path.with_extension("partial");
        std::fs::write(&temporary, text).map_err(io)?;
        std::fs::rename(&temporary, path).map_err(io)
    }

    /// Reads a file [`ShardScores::write`] wrote; anything else is an [`Error::Data`]
    /// naming the line.
    pub fn read(path: impl AsRef<Path>) -> Result<ShardScores> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            file: name.clone(),
            source,
        })?;
        let bad = |line: usize, what: &str| Error::Data {
            file: name.clone(),
            line: line as u64,
            column: 0,
            message: format!("{what} (not a shard file written by wgpu-mlp?)"),
        };
        let (header, body) = text.split_once('\n').unwrap_or((&text, ""));
        let fields: Vec<&str> = header.split_whitespace().collect();
        let [_, "wgpu-mlp", "shard", shard, points, folds, scoring, grid] = fields[..] else {
            return Err(bad(1, "expected the '# wgpu-mlp shard i/N ...' line"));
        };
        fn value<'t>(field: &'t str, key: &str) -> Option<&'t str> {
            field.strip_prefix(key)
        }
        let value = |field, key: &str| value(field, key).ok_or_else(|| bad(1, &format!("expected {key}")));
        let number = |text: &str| text.parse::<usize>().map_err(|_| bad(1, "expected a count"));
        let scoring = Scoring::from_name(value(scoring, "scoring=")?)
            .ok_or_else(|| bad(1, "expected scoring=<a score's name>"))?;
        let grid_fingerprint =
            u64::from_str_radix(value(grid, "grid=")?, 16).map_err(|_| bad(1, "expected grid=<hex>"))?;
        let (models, failures) = read_rows(body, &bad)?;
        Ok(ShardScores {
            shard: Shard::parse(shard).map_err(|_| bad(1, "expected shard i/N"))?,
            points: number(value(points, "points=")?)?,
            folds: number(value(folds, "folds=")?)?,
            scoring,
            grid_fingerprint,
            models,
            failures,
        })
    }

    /// The rows of [`ShardScores::write`]'s file after its `#` line: a header, then one row
    /// per model.
    fn rows_csv(&self) -> String {
        let mut writer = csv::Writer::from_writer(Vec::new());
        // Writing into memory cannot fail.
        let _ = writer.write_record(["point", "fold", "score", "seconds", "failure"]);
        for &(p, k, score, seconds) in &self.models {
            let failure = self
                .failures
                .iter()
                .find(|&&(q, j, _)| (q, j) == (p, k))
                .map_or("", |(_, _, reason)| reason.as_str());
            let _ = writer.write_record([
                p.to_string(),
                k.to_string(),
                score.to_string(),
                seconds.to_string(),
                failure.to_string(),
            ]);
        }
        writer
            .into_inner()
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_default()
    }
}

/// A shard file's models and failures, as [`ShardScores`] holds them.
type Rows = (Vec<(usize, usize, f32, f64)>, Vec<(usize, usize, String)>);

/// The `point,fold,score,seconds[,failure]` rows after a shard file's first line (a header
/// row, then one per model; files from before failures were recorded have no `failure`);
/// `bad` makes the error for a line of the file.
fn read_rows(body: &str, bad: &dyn Fn(usize, &str) -> Error) -> Result<Rows> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(body.as_bytes());
    // Lines of the body are 1-based; the file's first line comes before them.
    let line_of = |position: Option<&csv::Position>| position.map_or(0, |p| p.line() as usize + 1);
    let (mut models, mut failures) = (Vec::new(), Vec::new());
    for record in reader.records() {
        let record = record.map_err(|e| bad(line_of(e.position()), "expected CSV rows"))?;
        let line = line_of(record.position());
        if !(4..=5).contains(&record.len()) {
            return Err(bad(line, "expected point,fold,score,seconds,failure"));
        }
        let cell = |i: usize| record.get(i).unwrap_or_default();
        let parsed = (cell(0).parse(), cell(1).parse(), cell(2).parse(), cell(3).parse());
        let (Ok(p), Ok(k), Ok(score), Ok(seconds)) = parsed else {
            return Err(bad(line, "expected numbers"));
        };
        models.push((p, k, score, seconds));
        if !cell(4).is_empty() {
            failures.push((p, k, cell(4).to_string()));
        }
    }
    Ok((models, failures))
}
