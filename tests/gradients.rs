//! Gradients: the f64 reference against finite differences, the GPU against the reference,
//! and forks (one value feeding two ops) against finite differences.
//!
//! Tolerances: the reference vs central differences (h = 1e-5, f64) agree to ~1e-9
//! relative, asserted at 1e-6. The GPU computes in f32 through several layers; its relative
//! Frobenius error against the f64 reference is ~1e-6, asserted at 1e-4.

mod common;

use common::*;
use rand::Rng;
use wgpu_mlp::raw::GraphBuilder;
use wgpu_mlp::{Activation, Mlp, Sgd};

const FD_STEP: f64 = 1e-5;

fn random_net(rng: &mut rand::rngs::StdRng, sizes: &[usize], (hidden, output): (Activation, Activation)) -> RefMlp {
    RefMlp {
        sizes: sizes.to_vec(),
        hidden,
        output,
        loss_fn: wgpu_mlp::Loss::Mse,
        weights: sizes
            .windows(2)
            .map(|p| (0..p[0] * p[1]).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect(),
        biases: sizes
            .windows(2)
            .map(|p| (0..p[1]).map(|_| rng.random_range(-0.5..0.5)).collect())
            .collect(),
    }
}

/// Central difference of `f` with respect to every element of `param`.
fn finite_differences(param: &mut [f64], mut f: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    (0..param.len())
        .map(|i| {
            let keep = param[i];
            param[i] = keep + FD_STEP;
            let up = f(param);
            param[i] = keep - FD_STEP;
            let down = f(param);
            param[i] = keep;
            (up - down) / (2.0 * FD_STEP)
        })
        .collect()
}

fn rel64(got: &[f64], want: &[f64]) -> f64 {
    let diff: f64 = got.iter().zip(want).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
    let norm: f64 = want.iter().map(|b| b * b).sum::<f64>().sqrt();
    diff / norm.max(1e-300)
}

#[test]
fn reference_backprop_matches_finite_differences() {
    // ReLU's kink: a pre-activation within FD_STEP of 0 would break the difference; with
    // continuous random inputs that has probability ~1e-5 per unit.
    use Activation::{Gelu, Identity, Relu, Sigmoid, Tanh};
    for (sizes, activations, batch) in [
        (vec![3, 5, 2], (Sigmoid, Sigmoid), 5),
        (vec![4, 7, 3, 2], (Sigmoid, Sigmoid), 3),
        (vec![5, 3, 1], (Sigmoid, Identity), 7),
        (vec![2, 9, 4, 3], (Sigmoid, Identity), 1),
        (vec![4, 6, 5, 2], (Relu, Sigmoid), 4),
        (vec![3, 7, 2], (Tanh, Identity), 6),
        (vec![5, 4, 6, 3], (Gelu, Tanh), 3),
        (vec![2, 5, 3], (Identity, Relu), 5),
    ] {
        let (seed, mut rng) = seeded_rng();
        let net = random_net(&mut rng, &sizes, activations);
        let x: Vec<f64> = (0..batch * sizes[0]).map(|_| rng.random_range(-1.0..1.0)).collect();
        let t: Vec<f64> = (0..batch * sizes[sizes.len() - 1])
            .map(|_| rng.random_range(0.0..1.0))
            .collect();
        let (d_w, d_b) = net.gradients(&x, &t, batch);
        for l in 0..sizes.len() - 1 {
            let mut probe = net.clone();
            let mut w = probe.weights[l].clone();
            let fd_w = finite_differences(&mut w, |w| {
                probe.weights[l] = w.to_vec();
                probe.loss(&x, &t, batch)
            });
            let mut probe = net.clone();
            let mut b = probe.biases[l].clone();
            let fd_b = finite_differences(&mut b, |b| {
                probe.biases[l] = b.to_vec();
                probe.loss(&x, &t, batch)
            });
            for (what, analytic, numeric) in [("W", &d_w[l], &fd_w), ("b", &d_b[l], &fd_b)] {
                let error = rel64(analytic, numeric);
                assert!(
                    error < 1e-6,
                    "{sizes:?} layer {l} d{what}: error {error:e} (TEST_SEED={seed})"
                );
            }
        }
    }
}

#[test]
fn gpu_gradients_match_reference() {
    let gpu = gpu();
    // Every activation in hidden layers (GELU's unfused, from its input) and the fused
    // output slopes; the tiny single-dispatch step and the general graph both appear.
    use Activation::{Gelu, Identity, Relu, Sigmoid, Tanh};
    for (sizes, (hidden, output), batch) in [
        (vec![3, 5, 2], (Sigmoid, Sigmoid), 5),
        (vec![7, 13, 3], (Sigmoid, Identity), 11),
        (vec![4, 7, 3, 2], (Sigmoid, Sigmoid), 3),
        (vec![17, 65, 31, 5], (Sigmoid, Sigmoid), 67),
        (vec![2, 9, 4, 1], (Sigmoid, Identity), 1),
        (vec![6, 11, 7, 3], (Relu, Sigmoid), 9),
        (vec![5, 8, 2], (Tanh, Identity), 4),
        (vec![4, 9, 6, 3], (Gelu, Sigmoid), 7),
        (vec![3, 70, 2], (Gelu, Identity), 5),
        (vec![3, 6, 4, 2], (Identity, Tanh), 3),
        (vec![4, 10, 3], (Tanh, Relu), 8),
    ] {
        let (seed, mut rng) = seeded_rng();
        let mlp = Mlp::builder(&sizes)
            .hidden_activation(hidden)
            .output_activation(output)
            .seed(seed)
            .build(&gpu, batch, Sgd::new(0.1))
            .unwrap();
        let x = uniform(&mut rng, batch * sizes[0], -1.0, 1.0);
        let t = uniform(&mut rng, batch * sizes[sizes.len() - 1], 0.0, 1.0);
        mlp.set_batch(&x, &t).unwrap();
        let reference = RefMlp::from_params(&sizes, (hidden, output), &mlp.parameters().unwrap());
        let (d_w, d_b) = reference.gradients(&to_f64(&x), &to_f64(&t), batch);
        let grads = mlp.gradients().unwrap();
        for l in 0..sizes.len() - 1 {
            assert_close(
                &format!("{sizes:?} {hidden:?}/{output:?} dW{}", l + 1),
                seed,
                &grads[l].weights,
                &d_w[l],
                1e-4,
            );
            let what = format!("{sizes:?} {hidden:?}/{output:?} db{}", l + 1);
            assert_close(&what, seed, &grads[l].bias, &d_b[l], 1e-4);
        }
        let loss = mlp.loss().unwrap();
        let want = reference.loss(&to_f64(&x), &to_f64(&t), batch);
        assert_close(&format!("{sizes:?} loss"), seed, &[loss], &[want], 1e-5);
    }
}

/// h feeds two ops (a value fork) and W2 is used by two matmuls (a parameter fork):
///   h = σ(x·W1 + b1);  u = h·W2;  v = σ(h)·W2;  loss = mse(u + v, t)
#[test]
fn gradients_add_at_forks() {
    let gpu = gpu();
    let (seed, mut rng) = seeded_rng();
    let (batch, n_in, hidden, n_out) = (5, 3, 4, 4);
    let x = uniform(&mut rng, batch * n_in, -1.0, 1.0);
    let t = uniform(&mut rng, batch * n_out, 0.0, 1.0);
    let w1 = uniform(&mut rng, n_in * hidden, -1.0, 1.0);
    let b1 = uniform(&mut rng, hidden, -0.5, 0.5);
    let w2 = uniform(&mut rng, hidden * n_out, -1.0, 1.0);

    let mut g = GraphBuilder::new();
    let xn = g.input("x", [batch, n_in]).unwrap();
    let tn = g.input("t", [batch, n_out]).unwrap();
    let w1n = g.param("W1", &[n_in, hidden], &w1).unwrap();
    let b1n = g.param("b1", &[hidden], &b1).unwrap();
    let w2n = g.param("W2", &[hidden, n_out], &w2).unwrap();
    let xw = g.matmul(xn, w1n).unwrap();
    let z = g.bias_add(xw, b1n).unwrap();
    let h = g.sigmoid(z).unwrap();
    let u = g.matmul(h, w2n).unwrap();
    let sh = g.sigmoid(h).unwrap();
    let v = g.matmul(sh, w2n).unwrap();
    let y = g.add(u, v).unwrap();
    let loss = g.mse(y, tn).unwrap();
    let graph = g.build(&gpu, loss, Sgd::new(0.1)).unwrap();
    graph.write(xn, &x).unwrap();
    graph.write(tn, &t).unwrap();
    graph.compute_gradients().unwrap();

    let (x64, t64) = (to_f64(&x), to_f64(&t));
    let f = |w1: &[f64], b1: &[f64], w2: &[f64]| {
        let mut h = matmul_ref(&x64, w1, batch, n_in, hidden, false, false);
        h.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = sigmoid(*v + b1[i % hidden]));
        let sh: Vec<f64> = h.iter().map(|&v| sigmoid(v)).collect();
        let u = matmul_ref(&h, w2, batch, hidden, n_out, false, false);
        let v = matmul_ref(&sh, w2, batch, hidden, n_out, false, false);
        u.iter()
            .zip(&v)
            .zip(&t64)
            .map(|((a, b), t)| 0.5 * (a + b - t).powi(2))
            .sum::<f64>()
            / batch as f64
    };
    let (mut pw1, mut pb1, mut pw2) = (to_f64(&w1), to_f64(&b1), to_f64(&w2));
    let (cb1, cw2) = (pb1.clone(), pw2.clone());
    let fd_w1 = finite_differences(&mut pw1, |w| f(w, &cb1, &cw2));
    let cw1 = to_f64(&w1);
    let fd_b1 = finite_differences(&mut pb1, |b| f(&cw1, b, &cw2));
    let cb1 = to_f64(&b1);
    let fd_w2 = finite_differences(&mut pw2, |w| f(&cw1, &cb1, w));
    assert_close("fork dW1", seed, &graph.read_grad(w1n).unwrap(), &fd_w1, 1e-4);
    assert_close("fork db1", seed, &graph.read_grad(b1n).unwrap(), &fd_b1, 1e-4);
    assert_close(
        "fork dW2 (used twice)",
        seed,
        &graph.read_grad(w2n).unwrap(),
        &fd_w2,
        1e-4,
    );
    assert_close(
        "fork loss",
        seed,
        &[graph.loss().unwrap()],
        &[f(&cw1, &cb1, &to_f64(&w2))],
        1e-5,
    );
}

/// Softmax and binary cross-entropy through whole nets: the f64 reference against finite differences,
/// and the GPU's gradients and loss against the reference (one-hot targets, a class count of
/// 1 and 2, several hidden activations). Tolerances as above.
#[test]
fn cross_entropy_gradients_match_reference() {
    use Activation::{Gelu, Identity, Relu, Sigmoid, Tanh};
    let gpu = gpu();
    use wgpu_mlp::Loss::{BinaryCrossEntropy, SoftmaxCrossEntropy};
    for (sizes, hidden, batch, loss) in [
        (vec![3, 5, 4], Relu, 6, SoftmaxCrossEntropy),
        (vec![4, 7, 3, 2], Tanh, 5, SoftmaxCrossEntropy),
        (vec![5, 9, 1], Sigmoid, 3, SoftmaxCrossEntropy),
        (vec![6, 11, 10], Gelu, 9, SoftmaxCrossEntropy),
        (vec![4, 6, 3], Relu, 7, BinaryCrossEntropy),
        (vec![3, 8, 1], Tanh, 5, BinaryCrossEntropy),
    ] {
        let (seed, mut rng) = seeded_rng();
        let classes = sizes[sizes.len() - 1];
        let x = uniform(&mut rng, batch * sizes[0], -1.0, 1.0);
        let mut t = vec![0.0f32; batch * classes];
        for r in 0..batch {
            t[r * classes + rng.random_range(0..classes)] = 1.0;
        }
        let mlp = Mlp::builder(&sizes)
            .hidden_activation(hidden)
            .output_activation(Identity)
            .loss(loss)
            .seed(seed)
            .build(&gpu, batch, Sgd::new(0.1))
            .unwrap();
        mlp.set_batch(&x, &t).unwrap();
        let mut reference = RefMlp::from_params(&sizes, (hidden, Identity), &mlp.parameters().unwrap());
        reference.loss_fn = loss;
        let (x64, t64) = (to_f64(&x), to_f64(&t));
        let (d_w, d_b) = reference.gradients(&x64, &t64, batch);
        // the reference against finite differences, first layer's weights
        let mut probe = reference.clone();
        let mut w = probe.weights[0].clone();
        let fd_w = finite_differences(&mut w, |w| {
            probe.weights[0] = w.to_vec();
            probe.loss(&x64, &t64, batch)
        });
        let error = rel64(&d_w[0], &fd_w);
        assert!(
            error < 1e-6,
            "{sizes:?} {hidden:?}: reference dW1 vs differences {error:e} (TEST_SEED={seed})"
        );
        let grads = mlp.gradients().unwrap();
        for l in 0..sizes.len() - 1 {
            let what = format!("cross entropy {sizes:?} {hidden:?} layer {}", l + 1);
            assert_close(&format!("{what} dW"), seed, &grads[l].weights, &d_w[l], 1e-4);
            assert_close(&format!("{what} db"), seed, &grads[l].bias, &d_b[l], 1e-4);
        }
        let want = reference.loss(&x64, &t64, batch);
        assert_close(
            &format!("cross entropy {sizes:?} loss"),
            seed,
            &[mlp.loss().unwrap()],
            &[want],
            1e-5,
        );
    }
    // A softmax loss after a squashing output activation is refused with the fix in the message.
    let err = Mlp::builder(&[3, 4, 2])
        .loss(wgpu_mlp::Loss::SoftmaxCrossEntropy)
        .build(&gpu, 2, Sgd::new(0.1))
        .unwrap_err();
    assert!(err.to_string().contains("Activation::Identity"), "{err}");
}
