//! The running sum the kernels' long loops share (shaders/sum.wgsl): blocked, in a fixed
//! order, with no step a shader compiler may simplify away.

use crate::device::kernel::wgsl_consts;

wgsl_consts! {
    pub(super) fn sum_constants;
    /// Terms per block of `BlockedSum`: the error bound (SUM_BLOCK + n / SUM_BLOCK)·u is
    /// smallest near √n, and 64 suits the loops it serves (a batch's rows, or one of 8 CPU
    /// lanes' share of a 65536-value loss: √8192 ≈ 90).
    const SUM_BLOCK: u32 = 64;
}

/// `BlockedSum` and its functions, for the shaders whose loops sum many terms.
pub(super) const BLOCKED_SUM: &str = include_str!("../../shaders/sum.wgsl");

/// `terms` summed as a kernel's `BlockedSum` sums them, in f32: the oracle of the order.
#[cfg(test)]
pub(super) fn blocked_sum(terms: impl IntoIterator<Item = f32>) -> f32 {
    let (mut total, mut block, mut count) = (0.0f32, 0.0f32, 0);
    for term in terms {
        block += term;
        count += 1;
        if count == SUM_BLOCK {
            total += block;
            block = 0.0;
            count = 0;
        }
    }
    total + block
}

#[cfg(test)]
mod tests {
    //! The kernels sum in exactly the order `blocked_sum` emulates (the same bits: nothing
    //! reassociated, nothing simplified away), on data where a plain running sum loses what
    //! the blocks keep: many small terms after large ones.

    use super::super::stacked_tests::gpu;
    use super::*;
    use crate::device::tensor::Tensor;
    use crate::ops::{bias_add_backward, mse_forward, reduce_threads};

    /// A plain running sum, the order the blocks replace.
    fn sequential(terms: impl IntoIterator<Item = f32>) -> f32 {
        terms.into_iter().fold(0.0, |sum, term| sum + term)
    }

    fn relative_error(got: f32, want: f64) -> f64 {
        (f64::from(got) - want).abs() / want.abs()
    }

    /// y = 1, t = 0 over (3, 65537) with row weights 1, 2⁻¹², 0: each of the loss kernel's
    /// lanes meets its row-0 terms (1 each) first, then row 1's (2⁻¹² each). On a CPU adapter
    /// (8 lanes, running totals near 8192) a plain running sum drops every row-1 term.
    #[test]
    fn mse_forward_sums_in_blocks() {
        let gpu = gpu();
        let (rows, cols) = (3, 65_537);
        let row_weights = [1.0, 2f32.powi(-12), 0.0];
        let twice_terms: Vec<f32> = (0..rows * cols).map(|i| row_weights[i / cols]).collect();
        let y = Tensor::full(&gpu, &[rows, cols], 1.0).unwrap();
        let t = Tensor::zeros(&gpu, &[rows, cols]).unwrap();
        let w = Tensor::from_slice(&gpu, &[rows], &row_weights).unwrap();
        let loss = Tensor::full(&gpu, &[1], f32::NAN).unwrap();
        gpu.run(&[&mse_forward(&gpu, &y, &t, &w, &loss).unwrap()]).unwrap();
        let got = loss.to_vec().unwrap()[0];

        // reduce.wgsl: lane v sums terms v, v + T, ...; a tree of widths T/2, ..., 1; halved.
        let lanes = reduce_threads(&gpu) as usize;
        let lane_sums = |sum: &dyn Fn(&mut dyn Iterator<Item = f32>) -> f32| {
            let mut partial: Vec<f32> = (0..lanes)
                .map(|lane| sum(&mut twice_terms.iter().copied().skip(lane).step_by(lanes)))
                .collect();
            let mut width = lanes / 2;
            while width > 0 {
                for v in 0..width {
                    partial[v] += partial[v + width];
                }
                width /= 2;
            }
            0.5 * partial[0]
        };
        let blocked = lane_sums(&|terms| blocked_sum(terms));
        assert_eq!(
            got.to_bits(),
            blocked.to_bits(),
            "mse_forward {got} vs its order {blocked} ({lanes} lanes)"
        );
        let exact = 0.5 * cols as f64 * (1.0 + 2f64.powi(-12));
        // Every block sum and total here is exact in f32; only the final value rounds.
        assert!(relative_error(got, exact) <= 1e-7, "{got} vs {exact}");
        if lanes <= 64 {
            let plain = lane_sums(&|terms| sequential(terms));
            assert!(
                relative_error(plain, exact) > 1e-4,
                "the data must defeat a plain sum: {plain}"
            );
        }
    }

    /// One column of 4096 then 64 000 rows of 2⁻¹³: past 4096 a plain sum drops each (half an
    /// ulp is 2⁻¹²); blocks of 64 of them (2⁻⁷) add exactly. Only the 63 small rows in the
    /// first block are lost (1.9e-6 of the total).
    #[test]
    fn bias_backward_sums_in_blocks() {
        let gpu = gpu();
        let rows = 64_001;
        let column: Vec<f32> = (0..rows)
            .map(|r| if r == 0 { 4096.0 } else { 2f32.powi(-13) })
            .collect();
        let d_y = Tensor::from_slice(&gpu, &[rows, 1], &column).unwrap();
        let d_bias = Tensor::full(&gpu, &[1], f32::NAN).unwrap();
        gpu.run(&[&bias_add_backward(&gpu, &d_y, &d_bias, false).unwrap()])
            .unwrap();
        let got = d_bias.to_vec().unwrap()[0];
        let blocked = blocked_sum(column.iter().copied());
        assert_eq!(
            got.to_bits(),
            blocked.to_bits(),
            "bias_add_backward {got} vs its order {blocked}"
        );
        let exact = 4096.0 + (rows - 1) as f64 * 2f64.powi(-13);
        assert!(relative_error(got, exact) <= 2e-6, "{got} vs {exact}");
        assert!(relative_error(sequential(column.iter().copied()), exact) > 1e-3);
    }
}
