# ResNeXt-101 (32x8d): Xie et al. 2017, as torchvision's resnext101_32x8d builds it: 32 groups
# of width 8, ResNet-101's 3-4-23-3 blocks. torchvision 0.29: 88,791,336 params, 16.41 GFLOPs.
import "std.rd"

param groups = 32
param wpg = 8

network resnext101_32x8d {
    input 3x224x224
    classes 1000
    shortcut B

    stem { conv 7x7, 64, stride: 2; bn; relu; maxpool 3x3, stride: 2, pad: 1 }
    stage conv2 = grouped_bottleneck(64, groups: groups, width_per_group: wpg) * 3
    stage conv3 = grouped_bottleneck(128, stride: 2, groups: groups, width_per_group: wpg) * 4
    stage conv4 = grouped_bottleneck(256, stride: 2, groups: groups, width_per_group: wpg) * 23
    stage conv5 = grouped_bottleneck(512, stride: 2, groups: groups, width_per_group: wpg) * 3
    head { avgpool global; fc classes }

    expect layers == 101
    expect params == 88791336
}
