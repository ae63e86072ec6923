//! The fusion pass: which ops run inside another op's kernel.

use super::NodeId;
use super::builder::{Node, Op, operands};
use crate::ops::Activation;

/// A dense layer run as one matmul: (A, W, bias, its activation if fused too).
pub(super) type FusedLayer = (NodeId, NodeId, NodeId, Option<Activation>);

/// Which ops run fused, to save dispatches:
/// - forward: `MatMul → BiasAdd (→ Activation)` whose intermediates feed nothing else run as
///   one matmul with a bias (+ activation) epilogue; the intermediates are never materialised
///   (an activation whose slope needs its input, GELU, keeps its own dispatch and input);
/// - backward: an activation whose slope follows from its output and whose only consumer is
///   a matmul (as its left operand) or the loss has no dispatch of its own: that consumer's
///   gradient kernel applies `act'(y)`.
pub(super) struct Fusion {
    pub(super) fused_away: Vec<bool>,
    /// At a fused layer's MatMul: its bias, whose gradient the weight-gradient kernel also
    /// computes.
    pub(super) bias_of: Vec<Option<NodeId>>,
    /// At the node that holds a fused layer's output: the layer.
    pub(super) layer_at: Vec<Option<FusedLayer>>,
    pub(super) activation_folded: Vec<bool>,
}

impl Fusion {
    pub(super) fn plan(nodes: &[Node], live: &[bool]) -> Fusion {
        let n = nodes.len();
        let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, node) in nodes.iter().enumerate() {
            if live[i] {
                for input in operands(node.op) {
                    consumers[input.0].push(i);
                }
            }
        }
        let only = |node: usize, consumer: usize| consumers[node] == [consumer];
        let mut fusion = Fusion {
            fused_away: vec![false; n],
            bias_of: vec![None; n],
            layer_at: vec![None; n],
            activation_folded: vec![false; n],
        };
        for (i, node) in nodes.iter().enumerate() {
            if !live[i] {
                continue;
            }
            // A BiasAdd of a MatMul that feeds nothing else, and perhaps its sole activation.
            let Op::BiasAdd(mm, bias) = node.op else { continue };
            let Op::MatMul(a, w) = nodes[mm.0].op else { continue };
            if !only(mm.0, i) {
                continue;
            }
            fusion.fused_away[mm.0] = true;
            fusion.bias_of[mm.0] = Some(bias);
            match consumers[i][..] {
                [s] => match nodes[s].op {
                    Op::Activation(activation, z) if z.0 == i && activation.grad_from_output() => {
                        fusion.fused_away[i] = true;
                        fusion.layer_at[s] = Some((a, w, bias, Some(activation)));
                    }
                    _ => fusion.layer_at[i] = Some((a, w, bias, None)),
                },
                _ => fusion.layer_at[i] = Some((a, w, bias, None)),
            }
        }
        for (i, node) in nodes.iter().enumerate() {
            let Op::Activation(activation, _) = node.op else {
                continue;
            };
            if !live[i] || !activation.grad_from_output() {
                continue;
            }
            fusion.activation_folded[i] = match consumers[i][..] {
                [c] => match nodes[c].op {
                    Op::MatMul(a, w) => a.0 == i && w.0 != i,
                    // Only the regression losses take the slope of an output activation in
                    // their own kernel.
                    Op::Loss(loss, y, t) => loss.takes_output_activation() && y.0 == i && t.0 != i,
                    _ => false,
                },
                _ => false,
            };
        }
        fusion
    }

    /// The weight W of `node` when `node = A·W` is a fused layer's product (its bias add's
    /// backward then leaves the bias gradient to the weight-gradient kernel).
    pub(super) fn weights_of(&self, nodes: &[Node], node: NodeId) -> Option<NodeId> {
        match nodes[node.0].op {
            Op::MatMul(_, w) if self.bias_of[node.0].is_some() => Some(w),
            _ => None,
        }
    }

    /// The input Z of `node` and its activation when `node = act(Z)` and its backward is
    /// folded into its consumer.
    pub(super) fn folded_activation(&self, nodes: &[Node], node: NodeId) -> Option<(NodeId, Activation)> {
        match nodes[node.0].op {
            Op::Activation(activation, z) if self.activation_folded[node.0] => Some((z, activation)),
            _ => None,
        }
    }
}
