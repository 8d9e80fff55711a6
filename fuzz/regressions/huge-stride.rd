# fuzz regression: a stride far past the input (found as `stride: 1.7M` on 8x8) passes check and verifies on the meta device, but PyTorch's CPU conv backward is quadratic in the stride (1 s at 3,000) and segfaults at 10^6: a training step hangs or kills the process
network t {
    input 1x4x4
    classes 2
    stem { conv 1x1, 1; conv 3x3, 1, stride: 1000000 }
    head { avgpool global; fc classes }
}
