//! `wgpu-mlp export MODEL --onnx OUT.onnx`: the fitted pipeline as an ONNX model.

use clap::{Arg, ArgMatches, Command};
use wgpu_mlp::{Gpu, Model};

use super::say;

pub fn command() -> Command {
    Command::new("export")
        .about("Write a saved model as ONNX (preprocessing, network and head), for ONNX Runtime")
        .arg(
            Arg::new("model")
                .required(true)
                .value_name("MODEL")
                .help("A model saved by `wgpu-mlp fit`"),
        )
        .arg(
            Arg::new("onnx")
                .long("onnx")
                .required(true)
                .value_name("OUT.onnx")
                .help("Where to write the ONNX model"),
        )
}

pub fn run(args: &ArgMatches) -> super::Outcome {
    let model_path = args.get_one::<String>("model").ok_or("MODEL is needed")?;
    let out = args.get_one::<String>("onnx").ok_or("--onnx is needed")?;
    super::checks::distinct_files(&[("--onnx", out)], &[("MODEL", model_path)])?;
    super::checks::prepare_output(out, "--onnx")?;
    let gpu = Gpu::new()?;
    let model = Model::load(&gpu, model_path)?;
    model.to_onnx(out)?;
    say!("{out}: ONNX (opset 17, ONNX-ML 3) of {model_path}");
    Ok(())
}
