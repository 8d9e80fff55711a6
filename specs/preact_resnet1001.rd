# Pre-activation ResNet-1001 for CIFAR-10: He et al. 2016, "Identity Mappings in Deep Residual
# Networks", Table 3 (bottleneck units, 9n+2 layers, n = 111; 4.92% error on CIFAR-10).
# Full pre-activation units; 1x1 projections without BN where the shape changes.
import "std.rd"

param n = 111

network preact_resnet1001 {
    input 3x32x32
    classes 10
    shortcut B
    projection conv

    stem { conv 3x3, 16 }
    stage conv2 = preact_bottleneck(16) * n
    stage conv3 = preact_bottleneck(32, stride: 2) * n
    stage conv4 = preact_bottleneck(64, stride: 2) * n
    head { bn; relu; avgpool global; fc classes }

    expect layers == 9 * n + 2
    expect params ~= 10.3M
}

train {
    dataset cifar10
    batch 128
    optimizer sgd(lr: 0.1, momentum: 0.9, weight_decay: 1e-4)
    schedule step(at: [32000, 48000], factor: 0.1)
    iterations 64000
    warmup lr: 0.01, until_error: 0.8
    augment pad: 4, crop: 32, flip: true
    normalize per_pixel_mean
}
