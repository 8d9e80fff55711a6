# ResNet-110 with stochastic depth for CIFAR-10: Huang et al. 2016, "Deep Networks with
# Stochastic Depth". In training each residual block survives with probability p_l, decaying
# linearly from 1 at the input to p_L = 0.5 at the last block; at test time every block is kept
# and its residual branch is scaled by p_l. Parameters and test-time FLOPs equal ResNet-110's.
import "std.rd"

param n = 18

network stochdepth110 {
    input 3x32x32
    classes 10
    shortcut A
    survival linear(last: 0.5)

    stem { conv 3x3, 16; bn; relu }
    stage conv2 = basic(16) * n
    stage conv3 = basic(32, stride: 2) * n
    stage conv4 = basic(64, stride: 2) * n
    head { avgpool global; fc classes }

    expect layers == 6 * n + 2
}

# Huang et al.: 500 epochs of 45k images at batch 128 (about 352 iterations each), lr 0.1
# divided by 10 at epochs 250 and 375, Nesterov momentum 0.9, weight decay 1e-4.
train {
    dataset cifar10
    batch 128
    optimizer sgd(lr: 0.1, momentum: 0.9, weight_decay: 1e-4, nesterov: true)
    schedule step(at: [88000, 132000], factor: 0.1)
    iterations 176000
    augment pad: 4, crop: 32, flip: true
    normalize per_channel
    split val: 5000
}
