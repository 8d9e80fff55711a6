# Small Network in Network for digits: after Lin, Chen and Yan 2013 (mlpconv blocks, here with
# BN, and global average pooling over one feature map per class instead of fc layers), sized for
# scikit-learn's 8x8 digits scaled to 16x16: trains offline in seconds, and `resdsl maps` draws
# its class confidence maps (docs/analysis.md).
import "std.rd"

block mlpconv_bn(k, c1, c2, c3) {
    conv k, c1; bn; relu
    conv 1x1, c2; bn; relu
    conv 1x1, c3; bn; relu
}

block pool() {
    maxpool 3x3, stride: 2, pad: 1
}

network nin_digits {
    input 3x16x16
    classes 10
    shortcut none

    stage mlpconv1 = mlpconv_bn(3, 48, 48, 48), pool()
    stage mlpconv2 = mlpconv_bn(3, 48, 48, classes)
    head { avgpool global }

    expect layers == 6
    expect params == 29924  # 6,192 in mlpconv1, 23,732 in mlpconv2
}

train {
    dataset digits
    batch 64
    iterations 200
    schedule step(at: [150], factor: 0.1)
    augment pad: 2, crop: 16, flip: false
}
