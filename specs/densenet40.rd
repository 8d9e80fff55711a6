# DenseNet-40 (k = 12) for CIFAR-10: Huang et al. 2017, "Densely Connected Convolutional
# Networks", Table 2. Concatenation shortcuts: each layer's k new feature maps are joined to all
# earlier ones (`dense { }` in std.rd's dense_layer); transitions (BN, ReLU, 1x1 conv, 2x2
# average pool) between the three dense blocks.
import "std.rd"

param k = 12          # growth rate
param per_block = 12  # (40 - 4) / 3 layers in each dense block
param stem_width = 16

network densenet40 {
    input 3x32x32
    classes 10
    shortcut none

    stem { conv 3x3, stem_width }
    stage dense1 = dense_layer(k) * per_block, transition(stem_width + per_block * k)
    stage dense2 = dense_layer(k) * per_block, transition(stem_width + 2 * per_block * k)
    stage dense3 = dense_layer(k) * per_block
    head { bn; relu; avgpool global; fc classes }

    expect layers == 3 * per_block + 4
    expect params ~= 1.0M  # Table 2
}

train {
    dataset cifar10
    batch 64
    optimizer sgd(lr: 0.1, momentum: 0.9, weight_decay: 1e-4, nesterov: true)
    schedule step(at: [117000, 175000], factor: 0.1)
    iterations 234000
    augment pad: 4, crop: 32, flip: true
    normalize per_channel
}
