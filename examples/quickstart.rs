//! The README's program: any CSV in (delimiter, header and class names detected), a 5-fold
//! cross-validated search with scikit-learn's MLP defaults, the winner refit, its test
//! score, the fitted pipeline saved, loaded back and asked for class names.
//! `cargo run --release --example quickstart -- [DATA.csv]` (default: data/digits.csv.gz).
use wgpu_mlp::{Dataset, Gpu, GridSearchCv, Model, data::CsvOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or("data/digits.csv.gz".into());
    let gpu = Gpu::new()?;
    let data = Dataset::from_csv_path(&path, &CsvOptions::default())?; // `,` `;` tab, header, names
    let (train, test) = data.train_test_split(0.2, 0)?; // stratified by class
    let model = GridSearchCv::default()
        .fit_dataset(&gpu, &data, &train)?
        .into_best_model()?;
    println!("test accuracy {:.3}", model.score(&data, &test)?);
    model.save("model.safetensors")?; // scaler, network, class names: the whole pipeline
    let model = Model::load(&gpu, "model.safetensors")?; // as any later process would
    println!("{:?}", model.predict_class_names(&data.features_of(&test[..5])?)?);
    Ok(())
}
