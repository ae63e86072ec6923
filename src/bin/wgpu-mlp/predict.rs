//! `wgpu-mlp predict`: a model saved by `fit` and rows to predict on, in; one CSV row of
//! predictions per input row out.

use std::io::Write;

use clap::{Arg, ArgAction, ArgMatches, Command};
use wgpu_mlp::{Gpu, Model};

pub fn command() -> Command {
    Command::new("predict")
        .about("Predict with a saved model: classes (and probabilities) or values, as CSV")
        .arg(Arg::new("model").required(true).value_name("MODEL").help("A model saved by `wgpu-mlp fit`"))
        .arg(Arg::new("data").required(true).value_name("ROWS.csv").help(
            "Rows to predict on: the model's feature columns, or the training file's layout (its label column is skipped)",
        ))
        .args(super::csv_args())
        .arg(Arg::new("output").long("output").short('o').value_name("FILE").help("Write here instead of stdout"))
        .arg(Arg::new("proba").long("proba").action(ArgAction::SetTrue).help(
            "Add each class's probability (models trained with a cross-entropy loss)",
        ))
}

pub fn run(args: &ArgMatches) -> super::Outcome {
    let model_path = args.get_one::<String>("model").ok_or("MODEL is needed")?;
    let data_path = args.get_one::<String>("data").ok_or("ROWS.csv is needed")?;
    let gpu = Gpu::new()?;
    let model = Model::load(&gpu, model_path)?;
    let x = wgpu_mlp::data::read_features(data_path, &super::csv_options(args), model.n_features())?;
    let sink: Box<dyn Write> = match args.get_one::<String>("output") {
        Some(path) => Box::new(std::fs::File::create(path).map_err(|e| format!("{path}: {e}"))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = csv::Writer::from_writer(sink);
    match model.class_names() {
        Some(names) => {
            let classes = model.predict_class_names(&x)?;
            let proba = match args.get_flag("proba") {
                true => Some(model.predict_proba(&x)?),
                false => None,
            };
            let mut header = vec!["class".to_string()];
            if proba.is_some() {
                header.extend(names.iter().map(|n| format!("p_{n}")));
            }
            out.write_record(&header)?;
            for (i, class) in classes.into_iter().enumerate() {
                let mut record = vec![class];
                if let Some(p) = &proba {
                    record.extend(p[i * names.len()..(i + 1) * names.len()].iter().map(f32::to_string));
                }
                out.write_record(&record)?;
            }
        }
        None => {
            let width = model.n_outputs();
            let y = model.predict(&x)?;
            let header: Vec<String> = match width {
                1 => vec!["prediction".into()],
                _ => (0..width).map(|j| format!("prediction_{j}")).collect(),
            };
            out.write_record(&header)?;
            for row in y.chunks(width) {
                out.write_record(row.iter().map(f32::to_string))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
