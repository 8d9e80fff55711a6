# Pre-activation ResNet-18 for CIFAR-10: He et al. 2016, "Identity Mappings in Deep Residual
# Networks", in the widely used CIFAR form (ImageNet ResNet-18's widths 64-512 and 2-2-2-2 blocks,
# a 3x3 stem without pooling, 1x1 projections without BN where the shape changes, 4x4 average
# pooling at the end, no final BN), as kuangliu/pytorch-cifar's PreActResNet18: 11,171,146 params.
import "std.rd"

network preact_resnet18_cifar {
    input 3x32x32
    classes 10
    shortcut B
    projection conv

    stem { conv 3x3, 64 }
    stage conv2 = preact_basic(64) * 2
    stage conv3 = preact_basic(128, stride: 2) * 2
    stage conv4 = preact_basic(256, stride: 2) * 2
    stage conv5 = preact_basic(512, stride: 2) * 2
    head { avgpool global; fc classes }

    expect layers == 18
    expect params == 11171146
}
