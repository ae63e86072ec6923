//! The benchmark workloads of `../shared/bench/workloads.md`, run through the public API
//! with the spec's protocol; one JSON line per workload.
//!
//! `cargo run --release --example workloads -- [--workload xor|mnist|wide|xl|small]
//!  [--steps-per-submit K] [--seconds S] [--profile] [--models N] [--activation NAME]
//!  [--loss mse|cross_entropy] [--optimizer sgd|adam] [--general]`
//! The last three run a variant of the spec's net (sigmoid, MSE, SGD), named in the output.
//! `--models N` runs the stacked form `NAME×N` (workloads.md, "Stacked models").
//! `--general` runs the graph's step where the single-dispatch kernel would (xor).
//! `WGPU_MLP_FUSED_STEP=0` runs the graph's step unfused (3L + 1 dispatches), for comparison.
//! `--profile` adds a line per dispatch of a step: its time run alone (median of 5, synced).

#[allow(dead_code)] // each user takes the parts it needs
#[path = "support/workloads.rs"]
mod workloads;

use std::time::Instant;

use wgpu_mlp::mlp::StepKernel;
use wgpu_mlp::{Activation, Adam, Gpu, Loss, Mlp, Optimizer, Sgd};
use workloads::{SMALL, WORKLOADS, Workload, XL};

struct Options {
    workloads: Vec<Workload>,
    steps_per_submit: usize,
    seconds: f64,
    profile: bool,
    models: usize,
    variant: Variant,
}

/// A variant of the spec's net (the spec: sigmoid hidden layers, MSE, SGD): for the cost of
/// each activation, loss and optimizer per step.
#[derive(Clone, Copy, Default)]
struct Variant {
    hidden: Activation,
    loss: Loss,
    adam: bool,
    /// The general (graph) step even where the single-dispatch kernel would run (xor).
    general: bool,
}

impl Variant {
    fn label(&self) -> String {
        let spec = Variant::default();
        let mut parts = Vec::new();
        if self.hidden != spec.hidden {
            parts.push(self.hidden.name());
        }
        if self.loss != spec.loss {
            parts.push(self.loss.name());
        }
        if self.adam {
            parts.push("adam");
        }
        if self.general {
            parts.push("general");
        }
        parts.join("+")
    }
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        workloads: WORKLOADS.to_vec(),
        steps_per_submit: 10,
        seconds: 2.0,
        profile: false,
        models: 1,
        variant: Variant::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--workload" => {
                let name = value()?;
                let all: Vec<Workload> = WORKLOADS.iter().copied().chain([XL, SMALL]).collect();
                options.workloads = vec![
                    *all.iter()
                        .find(|w| w.name == name)
                        .ok_or(format!("unknown workload {name}"))?,
                ];
            }
            "--steps-per-submit" => {
                options.steps_per_submit = value()?.parse().map_err(|e| format!("--steps-per-submit: {e}"))?;
                if options.steps_per_submit == 0 {
                    return Err("--steps-per-submit must be at least 1".into());
                }
            }
            "--profile" => options.profile = true,
            "--general" => options.variant.general = true,
            "--models" => {
                options.models = value()?.parse().map_err(|e| format!("--models: {e}"))?;
                if options.models == 0 {
                    return Err("--models must be at least 1".into());
                }
            }
            "--activation" => {
                let name = value()?;
                options.variant.hidden = Activation::from_name(&name).ok_or(format!("unknown activation {name}"))?;
            }
            "--loss" => {
                let name = value()?;
                options.variant.loss = Loss::from_name(&name).ok_or(format!("unknown loss {name}"))?;
            }
            "--optimizer" => {
                options.variant.adam = match value()?.as_str() {
                    "sgd" => false,
                    "adam" => true,
                    other => return Err(format!("unknown optimizer {other} (sgd or adam)")),
                };
            }
            "--seconds" => options.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    Ok(options)
}

/// Runs `n` steps in submits of at most `per_submit` steps; nothing is read back.
fn run_steps(mlp: &mut Mlp, n: usize, per_submit: usize) -> Result<(), wgpu_mlp::Error> {
    let mut left = n;
    while left > 0 {
        let k = left.min(per_submit);
        mlp.steps(k)?;
        left -= k;
    }
    Ok(())
}

/// The workload's model, or with `models` > 1 the stacked form (`NAME×N`): every model
/// from the same start on the same data, model m with lr 0.1·(m + 1)/N, so the last one
/// follows the single workload exactly.
fn fresh(gpu: &Gpu, workload: &Workload, models: usize, variant: Variant) -> Result<Mlp, wgpu_mlp::Error> {
    let data = workload.generate();
    // Adam at a hundredth of SGD's rate (PyTorch's default 1e-3 for the single model).
    let optimizer = |lr: f32| -> Optimizer {
        if variant.adam {
            Adam::new(lr / 100.0).weight_decay(1e-4).into()
        } else {
            Sgd::new(lr).momentum(0.9).weight_decay(1e-4).into()
        }
    };
    let output = match variant.loss {
        Loss::Mse => Activation::Sigmoid,
        _ => Activation::Identity,
    };
    let builder = Mlp::builder(workload.sizes)
        .parameters(data.params)
        .hidden_activation(variant.hidden)
        .output_activation(output)
        .loss(variant.loss)
        .step_kernel(if variant.general {
            StepKernel::General
        } else {
            StepKernel::Auto
        });
    let mlp = if models == 1 {
        builder.build(gpu, workload.batch, optimizer(0.1))?
    } else {
        let optimizers: Vec<Optimizer> = (0..models)
            .map(|m| optimizer(0.1 * (m + 1) as f32 / models as f32))
            .collect();
        builder.build_stack(gpu, workload.batch, &optimizers)?
    };
    mlp.set_batch(&data.x, &data.t)?;
    Ok(mlp)
}

/// The last model's loss after a forward pass (the single model's, unstacked).
fn last_loss(mlp: &Mlp) -> Result<f32, wgpu_mlp::Error> {
    mlp.batch_loss()?;
    let losses = mlp.losses()?;
    Ok(losses[losses.len() - 1])
}

fn measure(gpu: &Gpu, workload: &Workload, options: &Options, started: Instant) -> Result<String, wgpu_mlp::Error> {
    let per_submit = options.steps_per_submit;
    // 1. Loss sanity check.
    let models = options.models;
    let mut mlp = fresh(gpu, workload, models, options.variant)?;
    let loss_init = last_loss(&mlp)?;
    // The first step compiles whatever kernels the forward pass did not: say when it is done.
    mlp.step()?;
    mlp.loss()?;
    eprintln!(
        "{}: first step done {:.2} s after start (kernel compilation included)",
        workload.name,
        started.elapsed().as_secs_f64()
    );
    run_steps(&mut mlp, 199, per_submit)?;
    let loss_after_200 = last_loss(&mlp)?;

    // 2. Throughput.
    let mut mlp = fresh(gpu, workload, models, options.variant)?;
    run_steps(&mut mlp, 20, per_submit)?;
    mlp.loss()?;
    let start = Instant::now();
    run_steps(&mut mlp, 10, per_submit)?;
    mlp.loss()?;
    let t_step = start.elapsed().as_secs_f64() / 10.0;
    let n = 20usize.max((1.1 * options.seconds / t_step).ceil() as usize);
    let mut reps = Vec::new();
    let mut dispatches = 0;
    for _ in 0..3 {
        run_steps(&mut mlp, 20, per_submit)?;
        mlp.loss()?;
        let start = Instant::now();
        // Dispatches as the timed steps record them (GpuStats counts each one recorded).
        let before = gpu.stats().dispatches;
        run_steps(&mut mlp, n, per_submit)?;
        dispatches = gpu.stats().dispatches - before;
        mlp.loss()?;
        reps.push(start.elapsed().as_secs_f64() / n as f64);
    }
    reps.sort_by(f64::total_cmp);
    let s_per_step = reps[1];
    let mut name = if models == 1 {
        workload.name.to_string()
    } else {
        format!("{}x{models}", workload.name)
    };
    if !options.variant.label().is_empty() {
        name = format!("{name}[{}]", options.variant.label());
    }
    Ok(format!(
        "{{\"workload\":\"{}\",\"models\":{models},\"adapter\":\"{}\",\"backend\":\"{:?}\",\"loss_init\":{},\"loss_after_200\":{},\
         \"ms_per_step\":{:.5},\"ms_per_model_step\":{:.5},\"steps_per_s\":{:.1},\"gflops\":{:.3},\"steps_per_submit\":{},\
         \"dispatches_per_step\":{},\"scheduled_dispatches_per_step\":{},\"timed_steps\":{}}}",
        name,
        gpu.adapter_name(),
        gpu.backend(),
        loss_init,
        loss_after_200,
        s_per_step * 1e3,
        s_per_step * 1e3 / models as f64,
        1.0 / s_per_step,
        workload.flops_per_step() * models as f64 / s_per_step / 1e9,
        per_submit,
        dispatches as f64 / n as f64,
        mlp.dispatches_per_step(),
        n
    ))
}

fn main() {
    // Mesa 22's device-select layer asks Wayland for a display while listing GPUs, which
    // prints "XDG_RUNTIME_DIR is invalid" twice on a headless machine; we choose the adapter
    // ourselves, so the layer is not needed.
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // SAFETY: the first statement of main, before any other thread exists.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let result = Gpu::new().and_then(|gpu| {
        eprintln!(
            "adapter: {} ({:?}, {:?})",
            gpu.adapter_name(),
            gpu.backend(),
            gpu.device_type()
        );
        for workload in &options.workloads {
            let started = if workload == &options.workloads[0] {
                started
            } else {
                Instant::now()
            };
            println!("{}", measure(&gpu, workload, &options, started)?);
            if options.profile {
                let mut mlp = fresh(&gpu, workload, options.models, options.variant)?;
                mlp.steps(3)?;
                for (dispatch, ms) in mlp.profile(5)? {
                    println!(
                        "{{\"profile\":\"{}\",\"dispatch\":{dispatch:?},\"ms\":{ms:.4}}}",
                        workload.name
                    );
                }
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
