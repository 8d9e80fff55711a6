# fuzz regression: `maxpool 3, stride: 1e18` inside a block passes check; model.py writes the stride as the float 1e+18, which nn.MaxPool2d refuses (the module fails to build)
block p() { maxpool 3, stride: 1e18 }
network t {
    input 3x3x3
    classes 2
    stage s = p()
    head { avgpool global; fc classes }
}
