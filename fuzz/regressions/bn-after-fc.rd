# fuzz regression: `bn` after an `fc` (a vector) was written as nn.BatchNorm2d, which refuses 2-D input: the module failed to run
network t {
    input 3x2x2
    classes 1
    head { fc 4; bn; relu; fc classes }
}
