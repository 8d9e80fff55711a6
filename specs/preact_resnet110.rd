# Pre-activation ResNet-110 for CIFAR-10: He et al. 2016, "Identity Mappings in Deep Residual
# Networks", Table 2 (full pre-activation, basic units, 6n+2 layers, n = 18; 6.37% error).
import "std.rd"

param n = 18

network preact_resnet110 {
    input 3x32x32
    classes 10
    shortcut B
    projection conv

    stem { conv 3x3, 16 }
    stage conv2 = preact_basic(16) * n
    stage conv3 = preact_basic(32, stride: 2) * n
    stage conv4 = preact_basic(64, stride: 2) * n
    head { bn; relu; avgpool global; fc classes }

    expect layers == 6 * n + 2
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
