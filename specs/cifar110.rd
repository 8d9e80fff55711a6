# CIFAR-10 ResNet-110: He et al. 2015, Sec. 4.2 and Table 6 (6n+2 layers, n = 18, option A
# shortcuts: identity, zero-padded where the width doubles). Plain counterpart: --set shortcut=none.
# Other depths: --set n=3 (20 layers), 5 (32), 7 (44), 9 (56), 18 (110), 200 (1202).
import "std.rd"

param n = 18

network cifar_resnet110 {
    input 3x32x32
    classes 10
    shortcut A

    stem { conv 3x3, 16; bn; relu }
    stage conv2 = basic(16) * n
    stage conv3 = basic(32, stride: 2) * n
    stage conv4 = basic(64, stride: 2) * n
    head { avgpool global; fc classes }

    expect layers == 6 * n + 2
}

# The paper's recipe: batch 128, SGD momentum 0.9, weight decay 1e-4, lr 0.1 divided by 10 at
# 32k and 48k iterations, stop at 64k; 45k/5k train/val split; pad 4, random 32x32 crop, flip;
# per-pixel mean subtracted.
train {
    dataset cifar10
    batch 128
    optimizer sgd(lr: 0.1, momentum: 0.9, weight_decay: 1e-4)
    schedule step(at: [32000, 48000], factor: 0.1)
    iterations 64000
    augment pad: 4, crop: 32, flip: true
    normalize per_pixel_mean
    split val: 5000
    warmup lr: 0.01, until_error: 0.8  # Sec. 4.2: 0.01 until training error < 80%, then 0.1
}
