# WRN-28-10 for CIFAR-10: Zagoruyko & Komodakis 2016, "Wide Residual Networks", Table 1 and the
# authors' code: pre-activation basic blocks widened k = 10 times (160, 320, 640 channels),
# (28 - 4) / 6 = 4 blocks per group, 1x1 projection shortcuts without BN on the pre-activated
# input where the shape changes. 36.5M params in the paper (Table 4); 36,479,194 in the authors'
# code. The paper's depth 28 = 6n + 4 counts the stem, the 24 block convs and the 3 projections;
# resdsl's layers are the main path's convs and the fc: 6n + 2.
import "std.rd"

param k = 10
param n = 4

network wrn28_10 {
    input 3x32x32
    classes 10
    shortcut B
    projection conv

    stem { conv 3x3, 16 }
    stage conv2 = preact_basic(16 * k) * n
    stage conv3 = preact_basic(32 * k, stride: 2) * n
    stage conv4 = preact_basic(64 * k, stride: 2) * n
    head { bn; relu; avgpool global; fc classes }

    expect layers == 6 * n + 2
    expect params == 36479194
}
