# fuzz regression: `bottleneck(1, 9e17)`: a stride of 9e17 through a block argument passes check; model.py passes it on as the float 9e+17, which nn.Conv2d refuses (the module fails to build)
import "std.rd"
network t {
    input 3x224x224
    classes 1
    shortcut B
    stage s = bottleneck(1, 9e17)
    head { avgpool global; fc classes }
}
