//! Fused kernels against the kernels they stand for, bit for bit, stacked and alone.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::stacked_tests::{check, gpu, operand, single};
use super::*;

/// The loss fused with its gradient (`loss_with_gradient`) writes the same bits as the loss
/// kernel and the gradient kernel run apart — MSE and Huber (through an output activation),
/// softmax and binary cross-entropy — and stacks like every kernel.
#[test]
fn fused_loss_and_gradient_equal_the_two_kernels() {
    let gpu = gpu();
    let mut rng = StdRng::seed_from_u64(15);
    let (rows, cols) = (9, 7);
    let cases = [
        (Loss::Mse, Activation::Identity),
        (Loss::Mse, Activation::Sigmoid),
        (Loss::Huber, Activation::Identity),
        (Loss::Huber, Activation::Sigmoid),
        (Loss::SoftmaxCrossEntropy, Activation::Identity),
        (Loss::BinaryCrossEntropy, Activation::Identity),
    ];
    for (loss_kind, activation) in cases {
        let inputs = [
            operand(&mut rng, &[rows, cols], false, -2.0, 2.0),
            operand(&mut rng, &[rows, cols], false, -1.5, 1.5),
            operand(&mut rng, &[rows], false, 0.0, 0.2),
        ];
        let outputs = [
            operand(&mut rng, &[1], false, -1.0, 1.0),
            operand(&mut rng, &[rows, cols], false, -1.0, 1.0),
        ];
        let what = format!("{loss_kind:?} through {activation:?}");
        check(&gpu, &format!("fused {what}"), &inputs, &outputs, |gpu, i, o| {
            let fused = loss_with_gradient(gpu, loss_kind, activation, &i[0], &i[1], &i[2], &o[0], &o[1])?;
            Ok(fused.expect("batch-sized outputs fuse"))
        });
        // apart, on the same operands: the same bits
        let (ins, outs): (Vec<Tensor>, Vec<Tensor>) = (
            inputs.iter().map(|op| single(&gpu, op, 0)).collect(),
            outputs.iter().map(|op| single(&gpu, op, 0)).collect(),
        );
        let apart: Vec<Tensor> = outputs.iter().map(|op| single(&gpu, op, 0)).collect();
        let fused = loss_with_gradient(
            &gpu, loss_kind, activation, &ins[0], &ins[1], &ins[2], &outs[0], &outs[1],
        );
        gpu.run(&[&fused.unwrap().unwrap()]).unwrap();
        let forward = loss_forward(&gpu, loss_kind, &ins[0], &ins[1], &ins[2], &apart[0]).unwrap();
        let backward = loss_backward(&gpu, loss_kind, activation, &ins[0], &ins[1], &ins[2], &apart[1]).unwrap();
        gpu.run(&[&forward, &backward]).unwrap();
        for (o, name) in [(0, "loss"), (1, "gradient")] {
            let bits = |t: &Tensor| t.to_vec().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&outs[o]), bits(&apart[o]), "{what}: the {name}");
        }
    }
    // past the size one workgroup should write, the two stay apart
    let big = super::loss_kernels::FUSED_MAX_OUTPUTS + 1;
    let (y, w) = (
        Tensor::zeros(&gpu, &[big, 1]).unwrap(),
        Tensor::zeros(&gpu, &[big]).unwrap(),
    );
    let (out, d) = (
        Tensor::zeros(&gpu, &[1]).unwrap(),
        Tensor::zeros(&gpu, &[big, 1]).unwrap(),
    );
    let apart = loss_with_gradient(&gpu, Loss::Mse, Activation::Identity, &y, &y, &w, &out, &d);
    assert!(apart.unwrap().is_none());
}
