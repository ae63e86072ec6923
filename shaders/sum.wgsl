// The running sum of every long loop in a kernel (src/ops/sum.rs): the loss kernels' strides
// of elements or rows, the grouped kernel's loss terms, the bias gradient's rows. Terms go
// into a block of at most SUM_BLOCK, each full block into the total, so the rounding error
// grows like (SUM_BLOCK + n / SUM_BLOCK)·u instead of n·u, and small terms are not absorbed
// by a large total. Plain additions in a fixed order that a compiler may not change: the
// same inputs give the same bits on every run. Compensated (Kahan) summation would be more accurate on paper, but a shader
// compiler may simplify its (s + t) − s to t — lavapipe does — and silently undo it.
// Up to SUM_BLOCK terms the result is the plain sequential sum, bit for bit.

struct BlockedSum {
    total: f32,
    block: f32,
    count: u32,
}

fn blocked_sum_new() -> BlockedSum {
    return BlockedSum(0.0, 0.0, 0u);
}

fn blocked_sum_add(sum: ptr<function, BlockedSum>, term: f32) {
    (*sum).block += term;
    (*sum).count += 1u;
    if (*sum).count == SUM_BLOCK {
        (*sum).total += (*sum).block;
        (*sum).block = 0.0;
        (*sum).count = 0u;
    }
}

fn blocked_sum_value(sum: BlockedSum) -> f32 {
    return sum.total + sum.block;
}
