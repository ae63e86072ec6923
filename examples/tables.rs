//! A mixed-type table in, a saved pipeline out, predictions on new raw rows:
//! `cargo run --release --example tables -- TABLE.csv LABEL [NEW_ROWS.csv]` (NEW_ROWS defaults
//! to TABLE itself; its label column, if present, is ignored).

use wgpu_mlp::{
    Dataset, Gpu, GridSearchCv, Model,
    data::{CsvOptions, LabelColumn},
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(table), Some(label)) = (args.get(1), args.get(2)) else {
        return Err("usage: tables TABLE.csv LABEL [NEW_ROWS.csv]".into());
    };
    let new_rows = args.get(3).unwrap_or(table);
    let gpu = Gpu::new()?;
    let options = CsvOptions {
        label_column: LabelColumn::Name(label.clone()),
        ..Default::default()
    };
    let data = Dataset::from_csv_path(table, &options)?; // kinds inferred, ids dropped
    data.notes.iter().for_each(|note| eprintln!("note: {note}"));
    let rows: Vec<usize> = (0..data.len()).collect();
    let model = GridSearchCv::default()
        .fit_dataset(&gpu, &data, &rows)?
        .into_best_model()?;
    model.save("table.safetensors")?; // schema, imputation, categories, scaling, network
    let model = Model::load(&gpu, "table.safetensors")?;
    let new = wgpu_mlp::data::read_features(new_rows, &options, &model.schema(), model.n_features())?;
    match model.task() {
        wgpu_mlp::data::Task::Classification => println!("{:?}", model.predict_class_names(&new.features)?),
        wgpu_mlp::data::Task::Regression => println!("{:?}", model.predict(&new.features)?),
    }
    Ok(())
}
