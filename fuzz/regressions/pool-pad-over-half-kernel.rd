# fuzz regression: a pool padded by more than half its kernel passes check, but nn.MaxPool2d/AvgPool2d refuse it: the module failed to build
network t {
    input 3x4x4
    classes 2
    stem { maxpool 2x2, pad: 2 }
    head { avgpool global; fc classes }
}
