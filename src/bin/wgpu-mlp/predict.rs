//! `wgpu-mlp predict`: a model saved by `fit` and rows to predict on, in; one CSV row of
//! predictions per input row out. Columns are matched to the model's by header name.

use clap::{Arg, ArgAction, ArgMatches, Command};
use wgpu_mlp::{Gpu, Model, data::Task};

use super::messages::note;

pub fn command() -> Command {
    Command::new("predict")
        .about("Predict with a saved model: classes (and probabilities) or values, as CSV")
        .arg(
            Arg::new("model")
                .required(true)
                .value_name("MODEL")
                .help("A model saved by `wgpu-mlp fit`"),
        )
        .arg(Arg::new("data").required(true).value_name("ROWS.csv").help(
            "Rows to predict on (- for standard input): columns matched to the model's by header name \
             (other columns, the label among them, are ignored); without a header, the model's feature columns \
             or the training file's layout",
        ))
        .args(super::csv_args())
        .arg(
            Arg::new("output")
                .long("output")
                .short('o')
                .value_name("FILE")
                .help("Write here instead of stdout"),
        )
        .arg(
            Arg::new("proba")
                .long("proba")
                .action(ArgAction::SetTrue)
                .help("Add each class's probability (classifiers trained with a cross-entropy loss)"),
        )
}

pub fn run(args: &ArgMatches) -> super::Outcome {
    let model_path = args.get_one::<String>("model").ok_or("MODEL is needed")?;
    let data_path = args.get_one::<String>("data").ok_or("ROWS.csv is needed")?;
    let options = super::csv_options(args)?;
    if let Some(path) = args.get_one::<String>("output") {
        super::checks::distinct_files(
            &[("-o/--output", path)],
            &[("MODEL", model_path), ("ROWS.csv", data_path)],
        )?;
        super::checks::prepare_output(path, "-o/--output")?;
    }
    let gpu = Gpu::new()?;
    let model = Model::load(&gpu, model_path)?;
    let proba = args.get_flag("proba");
    if proba && model.task() == Task::Regression {
        return Err("--proba needs a classifier: this model is a regression, its predictions are values".into());
    }
    let rows = wgpu_mlp::data::read_features(data_path, &options, &model.schema(), model.n_features())?;
    rows.notes.iter().for_each(note);
    if !rows.ignored.is_empty() {
        note(format!(
            "ignored column(s) the model does not use: {}",
            rows.ignored.join(", ")
        ));
    }
    let x = &rows.features;
    let mut out = csv::Writer::from_writer(Vec::new());
    match model.task() {
        Task::Classification => {
            let names: Vec<String> = match model.class_names() {
                Some(names) => names.to_vec(),
                None => (0..model.n_outputs()).map(|c| c.to_string()).collect(),
            };
            let classes = model.predict_class_names(x)?;
            let p = if proba { Some(model.predict_proba(x)?) } else { None };
            let mut header = vec!["class".to_string()];
            if p.is_some() {
                header.extend(names.iter().map(|n| format!("p_{n}")));
            }
            out.write_record(&header)?;
            for (i, class) in classes.into_iter().enumerate() {
                let mut record = vec![class];
                if let Some(p) = &p {
                    record.extend(p[i * names.len()..(i + 1) * names.len()].iter().map(f32::to_string));
                }
                out.write_record(&record)?;
            }
        }
        Task::Regression => {
            let width = model.n_outputs();
            let y = model.predict(x)?;
            let header: Vec<String> = match (width, model.schema().label_name) {
                (1, Some(label)) if !label.is_empty() => vec![label],
                (1, _) => vec!["prediction".into()],
                _ => (0..width).map(|j| format!("prediction_{j}")).collect(),
            };
            out.write_record(&header)?;
            for row in y.chunks(width) {
                out.write_record(row.iter().map(f32::to_string))?;
            }
        }
    }
    let text = out.into_inner().map_err(|e| e.to_string())?;
    match args.get_one::<String>("output") {
        Some(path) => wgpu_mlp::data::write_atomically(path, &text)?,
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&text)
                .and_then(|_| stdout.flush())
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::BrokenPipe => Box::<dyn std::error::Error>::from(e),
                    _ => format!("writing the predictions to standard output: {e}").into(),
                })?;
        }
    }
    Ok(())
}
