# Plain-34 for ImageNet: He et al. 2015, Table 1 and Fig. 3 middle — ResNet-34 without
# shortcuts (the degradation problem of Fig. 4 left). Same as: resdsl info specs/resnet34.rd --set shortcut=none
import "std.rd"

network plain34 {
    input 3x224x224
    classes 1000
    shortcut none

    stem { conv 7x7, 64, stride: 2; bn; relu; maxpool 3x3, stride: 2, pad: 1 }
    stage conv2 = basic(64) * 3
    stage conv3 = basic(128, stride: 2) * 4
    stage conv4 = basic(256, stride: 2) * 6
    stage conv5 = basic(512, stride: 2) * 3
    head { avgpool global; fc classes }

    expect layers == 34
}
