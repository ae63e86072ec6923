//! The f64 references every test checks against (matmul, the MLP, the optimizers) and the
//! error measures, with nothing that needs a native device or the OS: the browser tests
//! (tests/web.rs) share them.
#![allow(dead_code)]

use wgpu_mlp::{Activation, Loss, Optimizer, optim::WeightDecay};

pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// ‖got − want‖_F, infinite when `got` has a non-finite value or the lengths differ, so
/// poisoned (unwritten) outputs always fail.
fn diff_norm(got: &[f32], want: &[f64]) -> f64 {
    if got.len() != want.len() || got.iter().any(|x| !x.is_finite()) {
        return f64::INFINITY;
    }
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w).powi(2))
        .sum::<f64>()
        .sqrt()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|w| w * w).sum::<f64>().sqrt()
}

#[track_caller]
pub fn assert_close(what: &str, seed: u64, got: &[f32], want: &[f64], tolerance: f64) {
    assert_close_scaled(what, seed, got, want, want, tolerance);
}

/// ‖got − want‖_F / ‖scale‖_F ≤ tolerance, where `scale` bounds the size of the terms that
/// were summed (|A|·|B| for A·B, say). Rounding error is proportional to those terms, not
/// to the result, which cancellation can make arbitrarily small.
#[track_caller]
pub fn assert_close_scaled(what: &str, seed: u64, got: &[f32], want: &[f64], scale: &[f64], tolerance: f64) {
    let n = norm(scale);
    let error = if n == 0.0 {
        diff_norm(got, want)
    } else {
        diff_norm(got, want) / n
    };
    assert!(
        error <= tolerance,
        "{what}: relative Frobenius error {error:e} > {tolerance:e} (replay with TEST_SEED={seed}); \
         first values got {:?} want {:?}",
        &got[..got.len().min(4)],
        &want[..want.len().min(4)]
    );
}

// ------------------------------------------------------------------ f64 references

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// c (m,n) = op(a)·op(b): `trans_a` means a is stored (k,m), `trans_b` b stored (n,k).
pub fn matmul_ref(a: &[f64], b: &[f64], m: usize, k: usize, n: usize, trans_a: bool, trans_b: bool) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for row in 0..m {
        for col in 0..n {
            let mut sum = 0.0;
            for kk in 0..k {
                let av = if trans_a { a[kk * m + row] } else { a[row * k + kk] };
                let bv = if trans_b { b[col * k + kk] } else { b[kk * n + col] };
                sum += av * bv;
            }
            c[row * n + col] = sum;
        }
    }
    c
}

// ------------------------------------------------------------------ f64 MLP reference

/// A dense MLP in f64: `h_l = act(h_{l−1}·W_l + b_l)`, `hidden` on hidden layers and `output`
/// on the last, each through the library's f64 activation references; the loss the batch
/// mean of `loss_fn`'s f64 reference (MSE unless set).
#[derive(Clone, Debug)]
pub struct RefMlp {
    pub sizes: Vec<usize>,
    pub hidden: Activation,
    pub output: Activation,
    pub loss_fn: Loss,
    /// Per layer: W (in,out) row-major, b (out).
    pub weights: Vec<Vec<f64>>,
    pub biases: Vec<Vec<f64>>,
}

impl RefMlp {
    /// The net of `params` with activations `(hidden, output)`.
    pub fn from_params(
        sizes: &[usize],
        (hidden, output): (Activation, Activation),
        params: &[wgpu_mlp::mlp::LayerParams],
    ) -> Self {
        RefMlp {
            sizes: sizes.to_vec(),
            hidden,
            output,
            loss_fn: Loss::Mse,
            weights: params.iter().map(|p| to_f64(&p.weights)).collect(),
            biases: params.iter().map(|p| to_f64(&p.bias)).collect(),
        }
    }

    fn activation(&self, layer: usize) -> Activation {
        if layer + 2 == self.sizes.len() {
            self.output
        } else {
            self.hidden
        }
    }

    /// Activations h_0 (= x) .. h_L (= y), each (batch, size_l).
    pub fn forward(&self, x: &[f64], batch: usize) -> Vec<Vec<f64>> {
        self.forward_with_pre_activations(x, batch).0
    }

    /// [`RefMlp::forward`] and each layer's pre-activation z_l = h_{l−1}·W_l + b_l.
    fn forward_with_pre_activations(&self, x: &[f64], batch: usize) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let layers = self.sizes.len() - 1;
        let mut hs = vec![x.to_vec()];
        let mut zs = Vec::with_capacity(layers);
        for l in 0..layers {
            let (fan_in, fan_out) = (self.sizes[l], self.sizes[l + 1]);
            let mut z = matmul_ref(&hs[l], &self.weights[l], batch, fan_in, fan_out, false, false);
            z.iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v += self.biases[l][i % fan_out]);
            hs.push(z.iter().map(|&v| self.activation(l).reference(v)).collect());
            zs.push(z);
        }
        (hs, zs)
    }

    pub fn loss(&self, x: &[f64], t: &[f64], batch: usize) -> f64 {
        let hs = self.forward(x, batch);
        let y = &hs[hs.len() - 1];
        let n = y.len() / batch;
        (0..batch)
            .map(|r| self.loss_fn.reference(&y[r * n..(r + 1) * n], &t[r * n..(r + 1) * n]))
            .sum::<f64>()
            / batch as f64
    }

    /// (dW, db) per layer by backpropagation.
    pub fn gradients(&self, x: &[f64], t: &[f64], batch: usize) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let layers = self.sizes.len() - 1;
        let (hs, zs) = self.forward_with_pre_activations(x, batch);
        let n = self.sizes[layers];
        let mut d_h: Vec<f64> = (0..batch)
            .flat_map(|r| {
                let (y, t) = (&hs[layers][r * n..(r + 1) * n], &t[r * n..(r + 1) * n]);
                self.loss_fn.reference_grad(y, t).into_iter().map(|g| g / batch as f64)
            })
            .collect();
        let mut d_w = vec![vec![]; layers];
        let mut d_b = vec![vec![]; layers];
        for l in (0..layers).rev() {
            let (fan_in, fan_out) = (self.sizes[l], self.sizes[l + 1]);
            // through the activation, from its input
            let activation = self.activation(l);
            let d_z: Vec<f64> = d_h
                .iter()
                .zip(&zs[l])
                .map(|(d, &z)| d * activation.reference_grad(z))
                .collect();
            d_b[l] = (0..fan_out)
                .map(|c| (0..batch).map(|r| d_z[r * fan_out + c]).sum())
                .collect();
            d_w[l] = matmul_ref(&hs[l], &d_z, fan_in, batch, fan_out, true, false);
            d_h = matmul_ref(&d_z, &self.weights[l], batch, fan_out, fan_in, false, true);
        }
        (d_w, d_b)
    }

    /// One SGD step with the same formulas as the library (see `Sgd`).
    pub fn sgd_step(
        &mut self,
        velocity: &mut (Vec<Vec<f64>>, Vec<Vec<f64>>),
        x: &[f64],
        t: &[f64],
        batch: usize,
        (lr, momentum, weight_decay, coupled): (f64, f64, f64, bool),
    ) {
        let (d_w, d_b) = self.gradients(x, t, batch);
        let update = |w: &mut Vec<f64>, v: &mut Vec<f64>, g: &Vec<f64>| {
            for i in 0..w.len() {
                if coupled {
                    v[i] = momentum * v[i] + g[i] + weight_decay * w[i];
                    w[i] -= lr * v[i];
                } else {
                    v[i] = momentum * v[i] + g[i];
                    w[i] -= lr * (v[i] + weight_decay * w[i]);
                }
            }
        };
        for l in 0..self.weights.len() {
            update(&mut self.weights[l], &mut velocity.0[l], &d_w[l]);
            update(&mut self.biases[l], &mut velocity.1[l], &d_b[l]);
        }
    }

    pub fn zero_velocity(&self) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        (
            self.weights.iter().map(|w| vec![0.0; w.len()]).collect(),
            self.biases.iter().map(|b| vec![0.0; b.len()]).collect(),
        )
    }
}

/// The seed's net: sigmoid hidden layers and a sigmoid output.
pub const SIGMOID_NET: (Activation, Activation) = (Activation::Sigmoid, Activation::Sigmoid);

/// torch.optim.RMSprop's update of one weight in f64, from its documented algorithm: returns
/// the new (w, b, v, ḡ): the momentum buffer b, the square average v, the gradient average ḡ.
pub fn rmsprop_step(rmsprop: &wgpu_mlp::Rmsprop, w: f64, g: f64, b: f64, v: f64, gbar: f64) -> (f64, f64, f64, f64) {
    let (lr, alpha, eps) = (rmsprop.lr as f64, rmsprop.alpha as f64, rmsprop.eps as f64);
    let (wd, mu) = (rmsprop.weight_decay as f64, rmsprop.momentum as f64);
    let g = g + wd * w;
    let v = alpha * v + (1.0 - alpha) * g * g;
    let (gbar, variance) = if rmsprop.centered {
        let gbar = alpha * gbar + (1.0 - alpha) * g;
        (gbar, v - gbar * gbar)
    } else {
        (gbar, v)
    };
    let avg = variance.sqrt() + eps;
    if mu > 0.0 {
        let b = mu * b + g / avg;
        (w - lr * b, b, v, gbar)
    } else {
        (w - lr * g / avg, b, v, gbar)
    }
}

/// PyTorch's update for one weight in f64: returns the new (w, m, s). `t` counts from 1.
pub fn reference_step(optimizer: &Optimizer, t: u32, w: f64, g: f64, m: f64, s: f64) -> (f64, f64, f64) {
    match *optimizer {
        Optimizer::Adam(adam) => {
            let (lr, b1, b2) = (adam.lr as f64, adam.beta1 as f64, adam.beta2 as f64);
            let (eps, wd) = (adam.eps as f64, adam.weight_decay as f64);
            let (w, g) = if adam.decoupled {
                (w - lr * wd * w, g)
            } else {
                (w, g + wd * w)
            };
            let m = b1 * m + (1.0 - b1) * g;
            let s = b2 * s + (1.0 - b2) * g * g;
            let m_hat = m / (1.0 - b1.powi(t as i32));
            let s_hat = s / (1.0 - b2.powi(t as i32));
            (w - lr * m_hat / (s_hat.sqrt() + eps), m, s)
        }
        Optimizer::Sgd(sgd) => {
            let (lr, mu, wd) = (sgd.lr as f64, sgd.momentum as f64, sgd.weight_decay as f64);
            let coupled = sgd.decay == WeightDecay::Coupled;
            let g = if coupled { g + wd * w } else { g };
            let v = mu * m + g;
            let step = if sgd.nesterov { g + mu * v } else { v };
            let w = if coupled {
                w - lr * step
            } else {
                w - lr * (step + wd * w)
            };
            (w, v, s)
        }
        Optimizer::Rmsprop(rmsprop) => {
            let (w, b, s, _) = rmsprop_step(&rmsprop, w, g, m, s, 0.0);
            assert!(!rmsprop.centered, "centered RMSprop keeps ḡ too: call rmsprop_step");
            (w, b, s)
        }
    }
}

/// An optimizer's state for [`RefMlp::optimizer_step`]: per layer, the first moment (SGD's
/// velocity) and second moment of weights and biases, and the step count.
#[derive(Clone, Debug, Default)]
pub struct RefOptimizerState {
    pub first: (Vec<Vec<f64>>, Vec<Vec<f64>>),
    pub second: (Vec<Vec<f64>>, Vec<Vec<f64>>),
    pub steps: u32,
}

impl RefMlp {
    /// One step of any optimizer with PyTorch's formulas ([`reference_step`]).
    pub fn optimizer_step(
        &mut self,
        optimizer: &Optimizer,
        state: &mut RefOptimizerState,
        x: &[f64],
        t: &[f64],
        batch: usize,
    ) {
        if state.steps == 0 {
            state.first = self.zero_velocity();
            state.second = self.zero_velocity();
        }
        state.steps += 1;
        let (d_w, d_b) = self.gradients(x, t, batch);
        let step = state.steps;
        let update = |w: &mut Vec<f64>, m: &mut Vec<f64>, s: &mut Vec<f64>, g: &Vec<f64>| {
            for i in 0..w.len() {
                (w[i], m[i], s[i]) = reference_step(optimizer, step, w[i], g[i], m[i], s[i]);
            }
        };
        for l in 0..self.weights.len() {
            update(
                &mut self.weights[l],
                &mut state.first.0[l],
                &mut state.second.0[l],
                &d_w[l],
            );
            update(
                &mut self.biases[l],
                &mut state.first.1[l],
                &mut state.second.1[l],
                &d_b[l],
            );
        }
    }
}
