# Network in Network for CIFAR-10: Lin, Chen and Yan 2013 (the authors' Caffe model):
# three mlpconv blocks (a kxk conv and two 1x1 convs, all with bias and ReLU), 3x3 stride-2
# pooling and dropout 0.5 between them, and global average pooling instead of fc layers: the
# last mlpconv makes one feature map per class.
import "std.rd"

block pool_dropout_max() {
    maxpool 3x3, stride: 2, pad: 1
    dropout 0.5
}

block pool_dropout_avg() {
    avgpool 3x3, stride: 2, pad: 1
    dropout 0.5
}

network nin_cifar10 {
    input 3x32x32
    classes 10
    shortcut none

    stage mlpconv1 = mlpconv(5, 192, 160, 96), pool_dropout_max()
    stage mlpconv2 = mlpconv(5, 192, 192, 192), pool_dropout_avg()
    stage mlpconv3 = mlpconv(3, 192, 192, classes)
    head { avgpool global }

    expect layers == 9
    expect params == 966986
}
